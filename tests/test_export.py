"""Export: Fiji (TensorFlow 1.15-loadable CSBDeep zip) and bioimage.io packages.

The TF 1.15 audit checks exported graphs against ``deepcontrast/export/tf115_ops.json``, the op
definitions extracted from the tensorflow-cpu 1.15.0 wheel (see TF115_OPS.md).

Tolerance of the TF1-style reload: the reloaded frozen graph runs the same TF kernels on the same
float32 constants as ``model.keras_model``, so outputs agree to float32 rounding; the tests allow
``|diff| <= 1e-5 + 1e-5 * |y|`` (observed: <= 1.2e-7). The optional check with a real
TensorFlow 1.15 (set DEEPCONTRAST_TF1_PYTHON) allows 1e-4 of the output's range, since TF 1.15's
kernels round differently (observed: 3D max relative difference 5e-4 on outputs ~1e3, i.e. ~1.5e-5
of the range).
"""
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import tensorflow as tf

from deepcontrast.cli import main
from deepcontrast.export import export_bioimageio, export_fiji
from deepcontrast.export._freeze import audit_graph_def, make_tf115_compatible, tf115_ops
from deepcontrast.models import Config, DeepContrast


def make_model(tmp_path, axes="YX", n_in=1, n_out=None, depth=2, name="m", probabilistic=False, seed=0, save=False):
    """A tiny untrained float32 model with random (non-trivial) weights, seeded.

    float32, so that ``model.keras_model`` is the network the exports hold (exports of mixed
    precision models are tested in test_precision.py).
    """
    config = Config(axes, n_in, n_out or n_in, probabilistic=probabilistic, unet_n_depth=depth, unet_n_first=4,
                    unet_kern_size=3, train_tensorboard=False, precision="float32")
    model = DeepContrast(config, name, basedir=str(tmp_path))
    rng = np.random.default_rng(seed)
    for w in model.keras_model.weights:
        w.assign(rng.normal(0, 0.3, w.shape).astype(np.float32))
    if save:
        model.keras_model.save_weights(str(model.logdir / "weights_best.h5"))
    return model


def read_saved_model(zip_path, tmp_path):
    from tensorflow.core.protobuf import saved_model_pb2

    out = tmp_path / "unzipped"
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(out)
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((out / "saved_model.pb").read_bytes())
    return out, sm


# ---------------------------------------------------------------- TF 1.15 op definitions


def test_tf115_ops_fixture_has_known_facts():
    ops = tf115_ops()
    assert len(ops) > 1000
    # facts of TF 1.15: MaxPool had no explicit_paddings yet, Conv2D did; no TF2-only ops
    assert "explicit_paddings" not in ops["MaxPool"] and "explicit_paddings" in ops["Conv2D"]
    assert {"Conv3D", "MaxPool3D", "AddV2", "Placeholder"} <= set(ops)
    assert "XlaCallModule" not in ops


def _node_graph(op, **attrs):
    gd = tf.compat.v1.GraphDef()
    node = gd.node.add(name="n", op=op)
    for k, v in attrs.items():
        node.attr[k].CopyFrom(v)
    return gd


def test_audit_flags_attribute_tf115_lacks():
    gd = _node_graph("MaxPool", explicit_paddings=tf.compat.v1.AttrValue(list=tf.compat.v1.AttrValue.ListValue()))
    assert any("explicit_paddings" in p for p in audit_graph_def(gd))


def test_clean_strips_default_attribute_tf115_lacks():
    gd = _node_graph("MaxPool", explicit_paddings=tf.compat.v1.AttrValue(list=tf.compat.v1.AttrValue.ListValue()),
                     _class=tf.compat.v1.AttrValue(s=b"loc:@x"))
    assert audit_graph_def(make_tf115_compatible(gd)) == []


def test_clean_refuses_non_default_attribute_tf115_lacks():
    lst = tf.compat.v1.AttrValue.ListValue(i=[0, 0, 1, 1, 1, 1, 0, 0])
    gd = _node_graph("MaxPool", explicit_paddings=tf.compat.v1.AttrValue(list=lst))
    with pytest.raises(ValueError, match="explicit_paddings"):
        make_tf115_compatible(gd)


def test_clean_refuses_op_tf115_lacks():
    gd = _node_graph("XlaCallModule")
    with pytest.raises(ValueError, match="XlaCallModule"):
        make_tf115_compatible(gd)


# ---------------------------------------------------------------- Fiji export


@pytest.mark.parametrize(
    "axes,n_in,n_out,depth",
    [("YX", 1, 1, 2), ("YX", 2, 3, 1), ("ZYX", 1, 1, 2), ("ZYX", 2, 2, 1)],
    ids=["2d", "2d-multichannel", "3d", "3d-multichannel"],
)
def test_fiji_export_is_tf115_clean_and_reproduces_model(tmp_path, axes, n_in, n_out, depth):
    model = make_model(tmp_path, axes, n_in, n_out, depth)
    zip_path = export_fiji(model, tmp_path / "out" / "export.zip")
    assert zip_path == tmp_path / "out" / "export.zip"
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
        meta = json.loads(z.read("meta.json"))
        config = json.loads(z.read("config.json"))
        settings = json.loads(z.read("deepcontrast.json"))
    assert {"saved_model.pb", "variables/", "meta.json", "config.json", "deepcontrast.json"} <= names
    # meta.json exactly as CSBDeep's export_TF writes it (what the Fiji plugin reads)
    from csbdeep.version import __version__ as csbdeep_version

    assert meta == {
        "type": "DeepContrast", "version": csbdeep_version, "probabilistic": False, "axes": model.config.axes,
        "axes_div_by": list(model._axes_div_by(model.config.axes)),
        "tile_overlap": list(model._axes_tile_overlap(model.config.axes)),
    }
    assert config["axes"] == model.config.axes and config["n_channel_out"] == n_out
    # the folder's config.json (the network) and the model's settings, each once
    assert config == json.loads((model.logdir / "config.json").read_text())
    # without data settings a 3D network normalizes every plane on its own (as DegradedRawData's 3D data)
    assert settings == {"degradation_settings": None, "predict_memory_mb": 2048,
                        "normalize_per_slice": "Z" in model.config.axes, "precision": "float32"}

    out, sm = read_saved_model(zip_path, tmp_path)
    (mg,) = sm.meta_graphs
    assert list(mg.meta_info_def.tags) == ["serve"]
    sig = mg.signature_def["serving_default"]
    assert set(sig.inputs) == {"input"} and set(sig.outputs) == {"output"}
    # only ops and attributes TF 1.15 knows, weights frozen, defaults stripped
    assert audit_graph_def(mg.graph_def) == []
    ops = {n.op for n in mg.graph_def.node}
    assert not ops & {"VarHandleOp", "ReadVariableOp", "VariableV2"}
    want = {"Conv3D", "MaxPool3D"} if axes == "ZYX" else {"Conv2D", "MaxPool"}
    assert want <= ops
    known = tf115_ops()
    for n in mg.graph_def.node:
        for k, v in n.attr.items():
            default = known[n.op].get(k)
            assert default is None or json.loads(json.dumps(default)) != _as_dict(v), (n.op, k)

    # TF1-style reload in a fresh graph reproduces the Keras model on the same normalized input
    shape = (2,) + (8 if axes == "ZYX" else 24,) * (len(axes)) + (n_in,)
    x = np.random.default_rng(1).random(shape, dtype=np.float32)
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        loaded = tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(out))
        sig = loaded.signature_def["serving_default"]
        y = sess.run(sig.outputs["output"].name, {sig.inputs["input"].name: x})
    y_keras = model.keras_model.predict(x, verbose=0)
    assert y.shape == y_keras.shape == shape[:-1] + (n_out,)
    assert np.std(y_keras) > 1e-3  # the check is not vacuous
    np.testing.assert_allclose(y, y_keras, rtol=1e-5, atol=1e-5)


def _as_dict(v):
    from google.protobuf import json_format

    return json_format.MessageToDict(v)


_TF1_RUNNER = """
import ctypes, sys, tempfile, zipfile
import numpy as np, tensorflow as tf
from tensorflow.python import pywrap_tensorflow_internal as w
assert tf.__version__.startswith("1."), tf.__version__
d = tempfile.mkdtemp()
zipfile.ZipFile(sys.argv[1]).extractall(d)
# 1) the C API loader, as used by TensorFlow Java in Fiji (strict about unknown attributes)
lib = ctypes.CDLL(w._pywrap_tensorflow_internal.__file__)
for name in ("TF_NewGraph", "TF_NewSessionOptions", "TF_NewStatus", "TF_LoadSessionFromSavedModel"):
    getattr(lib, name).restype = ctypes.c_void_p
lib.TF_GetCode.argtypes = lib.TF_Message.argtypes = [ctypes.c_void_p]
lib.TF_Message.restype = ctypes.c_char_p
lib.TF_LoadSessionFromSavedModel.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p,
    ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
status = lib.TF_NewStatus()
lib.TF_LoadSessionFromSavedModel(lib.TF_NewSessionOptions(), None, d.encode(), (ctypes.c_char_p * 1)(b"serve"), 1,
                                 lib.TF_NewGraph(), None, status)
if lib.TF_GetCode(status) != 0:
    sys.exit("C API load failed: " + lib.TF_Message(status).decode())
# 2) the Python TF1 loader, to run the signature
with tf.Session(graph=tf.Graph()) as sess:
    mg = tf.saved_model.loader.load(sess, ["serve"], d)
    sig = mg.signature_def["serving_default"]
    y = sess.run(sig.outputs["output"].name, {sig.inputs["input"].name: np.load(sys.argv[2])})
np.save(sys.argv[3], y)
"""


@pytest.mark.skipif(not os.environ.get("DEEPCONTRAST_TF1_PYTHON"),
                    reason="set DEEPCONTRAST_TF1_PYTHON to a python with tensorflow 1.15 to run the real TF1 check")
@pytest.mark.parametrize("axes", ["YX", "ZYX"])
def test_fiji_export_runs_in_real_tensorflow_1_15(tmp_path, axes):
    """Optional end-to-end check with a real TF 1.15 (e.g. a python3.7 venv with tensorflow-cpu==1.15.0)."""
    model = make_model(tmp_path, axes, 1, 1, depth=2)
    zip_path = export_fiji(model, tmp_path / "export.zip")
    x = np.random.default_rng(2).random((1,) + (16,) * len(axes) + (1,), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "run.py").write_text(_TF1_RUNNER)
    res = subprocess.run([os.environ["DEEPCONTRAST_TF1_PYTHON"], str(tmp_path / "run.py"), str(zip_path),
                          str(tmp_path / "x.npy"), str(tmp_path / "y.npy")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    y_keras = model.keras_model.predict(x, verbose=0)
    # different TF versions use different conv kernels: allow 1e-4 of the output's range
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), y_keras, rtol=0, atol=1e-4 * np.abs(y_keras).max())


def test_fiji_export_default_path_and_no_leftovers(tmp_path):
    model = make_model(tmp_path, depth=1)
    path = model.export_TF()
    assert path == model.logdir / "TF_SavedModel.zip" and zipfile.is_zipfile(path)
    assert not [p for p in model.logdir.iterdir() if p.name.startswith(".TF_SavedModel")]


def test_fiji_export_probabilistic_meta(tmp_path):
    model = make_model(tmp_path, depth=1, probabilistic=True)
    with zipfile.ZipFile(export_fiji(model, tmp_path / "p.zip")) as z:
        assert json.loads(z.read("meta.json"))["probabilistic"] is True


def test_fiji_export_without_folder_needs_fname(tmp_path):
    config = Config("YX", unet_n_depth=1, unet_n_first=4, train_tensorboard=False)
    model = DeepContrast(config, None, basedir=None)
    with pytest.raises(ValueError, match="fname"):
        export_fiji(model)


# ---------------------------------------------------------------- bioimage.io


def _run_test_model(path, tmp_path, monkeypatch):
    from bioimageio.core import test_model

    monkeypatch.chdir(tmp_path)  # bioimageio.core unzips TF weights into the working directory
    summary = test_model(path)
    assert summary.status == "passed", summary.format()
    return summary


def test_bioimageio_package_passes_test_model(tmp_path, monkeypatch):
    pytest.importorskip("bioimageio.core")
    model = make_model(tmp_path, "YX", depth=2)
    model.degradation_settings = {"degradation": {"attenuation_length": 150.0}, "extra_depth": [10, 40]}
    path = export_bioimageio(model, tmp_path / "pkg.zip", authors=["Ada Lovelace"])
    assert path == tmp_path / "pkg.zip"
    _run_test_model(path, tmp_path, monkeypatch)
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        readme = z.read("README.md").decode()
        rdf = z.read("rdf.yaml").decode()
        x, y = (np.load(z.open(f"test_{k}.npy")) for k in ("input", "output"))
    assert {"rdf.yaml", "cover.png", "tf_saved_model_bundle.zip", "test_input.npy", "test_output.npy"} <= names
    assert "scale_range" in rdf and "halo" in rdf and "tensorflow_saved_model_bundle" in rdf
    assert "one\niteration" in readme or "one iteration" in readme
    assert "attenuation_length" in readme and "extra_depth" in readme
    from ruyaml import YAML  # bioimageio.spec's YAML reader

    ours = YAML(typ="safe").load(rdf)["config"]["deepcontrast"]
    assert ours["csbdeep_config"] == json.loads((model.logdir / "config.json").read_text())
    assert {k: ours[k] for k in ("degradation_settings", "precision", "normalize_per_slice")} == {
        "degradation_settings": model.degradation_settings, "precision": "float32", "normalize_per_slice": False}
    # test output = our predict in normalized units = the network on the normalized input
    from csbdeep.utils import normalize

    y_net = model.keras_model.predict(normalize(x, 2, 99.8, axis=(1, 2)), verbose=0)
    np.testing.assert_allclose(y, y_net, rtol=1e-4, atol=1e-4)


def test_bioimageio_3d_multichannel_passes_test_model(tmp_path, monkeypatch):
    pytest.importorskip("bioimageio.core")
    model = make_model(tmp_path, "ZYX", 2, 2, depth=1)
    sample = np.random.default_rng(3).gamma(2.0, 100.0, (25, 30, 31, 2)).astype(np.float32)
    path = export_bioimageio(model, tmp_path / "pkg3d.zip", input_sample=sample)
    _run_test_model(path, tmp_path, monkeypatch)
    with zipfile.ZipFile(path) as z:
        x = np.load(z.open("test_input.npy"))
    # cropped to the largest valid size (multiples of the step above the minimum)
    assert x.shape[0] == 1 and x.shape[-1] == 2 and all(n % 2 == 0 and n <= m for n, m in zip(x.shape[1:4], (25, 30, 31)))


def test_bioimageio_sample_with_wrong_channels(tmp_path):
    pytest.importorskip("bioimageio.core")
    model = make_model(tmp_path, "YX", 2, 2, depth=1)
    with pytest.raises(ValueError, match="input_sample"):
        export_bioimageio(model, tmp_path / "pkg.zip", input_sample=np.ones((32, 32), np.float32))


def test_bioimageio_sample_too_small(tmp_path):
    pytest.importorskip("bioimageio.core")
    model = make_model(tmp_path, "YX", depth=2)
    with pytest.raises(ValueError, match="too small"):
        export_bioimageio(model, tmp_path / "pkg.zip", input_sample=np.ones((8, 64), np.float32))


def test_bioimageio_missing_extra_names_the_install(tmp_path, monkeypatch):
    model = make_model(tmp_path, "YX", depth=1)
    monkeypatch.setitem(sys.modules, "bioimageio.core", None)
    with pytest.raises(ImportError, match=r'pip install "deepcontrast\[bioimageio\]"'):
        export_bioimageio(model, tmp_path / "pkg.zip")


# ---------------------------------------------------------------- CLI


def test_cli_export_fiji(tmp_path, capsys):
    model = make_model(tmp_path, "YX", depth=1, name="trained", save=True)
    out = tmp_path / "fiji.zip"
    assert main(["export", str(model.logdir), "--format", "fiji", "-o", str(out)]) == 0
    assert zipfile.is_zipfile(out) and str(out) in capsys.readouterr().out


def test_cli_refuses_existing_output(tmp_path, capsys):
    model = make_model(tmp_path, "YX", depth=1, name="trained", save=True)
    out = tmp_path / "fiji.zip"
    out.write_bytes(b"keep me")
    assert main(["export", str(model.logdir), "-o", str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep me"


def test_cli_refuses_model_without_weights(tmp_path, capsys):
    model = make_model(tmp_path, "YX", depth=1, name="untrained")
    assert main(["export", str(model.logdir), "-o", str(tmp_path / "x.zip")]) == 1
    assert "no weights" in capsys.readouterr().err


def test_cli_missing_bioimageio_extra(tmp_path, capsys, monkeypatch):
    model = make_model(tmp_path, "YX", depth=1, name="trained", save=True)
    monkeypatch.setitem(sys.modules, "bioimageio.core", None)
    assert main(["export", str(model.logdir), "--format", "bioimageio", "-o", str(tmp_path / "b.zip")]) == 1
    assert 'pip install "deepcontrast[bioimageio]"' in capsys.readouterr().err
