"""Mixed precision: layer dtypes, the 'auto' decision, float32 weights and exports, bf16 predict.

Tolerance of bfloat16 prediction: bfloat16 keeps 8 significant bits (relative rounding 2**-9);
the body's activations are rounded at every layer while the head (final 1x1 convolution and
residual addition) is float32, so the output deviates from float32 by a few 2**-9 of the
activations' scale (observed 0.03-0.1% of the output range for three seeds). The test allows
0.5% of the output range and checks the deviation is not zero (the network really computed in
bfloat16).
"""
import logging

import h5py
import numpy as np
import pytest

from deepcontrast.models import Config, DeepContrast
from deepcontrast.models import precision as P

HEAD = ("Conv2D", "Add", "Activation")


def tiny(precision, axes="YX", tmp_path=None, name="m", seed=0, **kw):
    config = Config(axes, unet_n_depth=2, unet_n_first=4, unet_kern_size=3, train_tensorboard=False,
                    precision=precision, train_batch_size=4, train_epochs=1, train_steps_per_epoch=2, **kw)
    model = DeepContrast(config, name, basedir=None if tmp_path is None else str(tmp_path))
    rng = np.random.default_rng(seed)
    for w in model.keras_model.weights:  # seeded, variance-preserving scale (as a trained net's)
        scale = 1 / np.sqrt(np.prod(w.shape[:-1])) if len(w.shape) > 1 else 0.1
        w.assign(rng.normal(0, scale, w.shape).astype(np.float32))
    return model


def pairs(n=8, size=32, rng=0):
    rng = np.random.default_rng(rng)
    y = rng.random((n, size, size, 1), dtype=np.float32)
    return y + 0.1 * rng.random(y.shape, dtype=np.float32), y


def head_and_body(keras_model):
    layers = keras_model.layers[1:]  # without the input layer
    n_head = len(HEAD)
    return layers[:-n_head], layers[-n_head:]


@pytest.mark.parametrize("precision,compute", [("bfloat16", "bfloat16"), ("float16", "float16"),
                                               ("float32", "float32")])
def test_precision_honoured_in_layer_dtypes(precision, compute):
    model = tiny(precision)
    body, head = head_and_body(model.keras_model)
    assert [type(layer).__name__ for layer in head] == list(HEAD)
    assert {layer.dtype_policy.compute_dtype for layer in body} == {compute}
    assert {layer.dtype_policy.compute_dtype for layer in head} == {"float32"}
    assert model.keras_model.layers[0].dtype_policy.compute_dtype == "float32"
    assert {w.dtype for w in model.keras_model.weights} == {"float32"}
    assert model.precision == compute
    y = model.keras_model(np.zeros((1, 16, 16, 1), np.float32))
    assert y.dtype == "float32"


def test_probabilistic_head_float32():
    model = tiny("bfloat16", probabilistic=True)
    dtypes = {layer.name: layer.dtype_policy.compute_dtype for layer in model.keras_model.layers}
    last_body = max(i for i, n in enumerate(dtypes) if n.startswith("up_level_0_no_"))
    head = list(dtypes)[last_body + 1:]
    assert len(head) == 6 and {dtypes[n] for n in head} == {"float32"}


def right_kernels(monkeypatch):
    """The kernel self-test passes whatever this machine's 16-bit kernels do."""
    from deepcontrast.models import kernels as K

    monkeypatch.setattr(P, "check_kernels", lambda dtype, n_dim: K.KernelCheck(dtype, n_dim, "CPU", {}, []))


@pytest.mark.parametrize("hw,choice", [
    ({"gpus": [(8, 6)], "cpu_bf16": False}, "bfloat16"),
    ({"gpus": [(9, 0), (7, 5)], "cpu_bf16": False}, "bfloat16"),
    ({"gpus": [(7, 5)], "cpu_bf16": True}, "float16"),
    ({"gpus": [(6, 1)], "cpu_bf16": False}, "float16"),
    ({"gpus": [None], "cpu_bf16": True}, "float32"),
    ({"gpus": [], "cpu_bf16": True}, "bfloat16"),
    ({"gpus": [], "cpu_bf16": False}, "float32"),
])
def test_auto_decision(monkeypatch, caplog, hw, choice):
    monkeypatch.setattr(P, "probe_hardware", lambda: hw)
    right_kernels(monkeypatch)  # the decision from the hardware alone (the self-test: test_precision_guard)
    with caplog.at_level(logging.INFO, logger=P.__name__):
        assert P.resolve_precision("auto") == choice
    assert f"precision 'auto': {choice}" in caplog.text


def test_auto_builds_what_the_probe_says(monkeypatch):
    right_kernels(monkeypatch)
    monkeypatch.setattr(P, "probe_hardware", lambda: {"gpus": [], "cpu_bf16": False})
    assert tiny("auto").precision == "float32"
    monkeypatch.setattr(P, "probe_hardware", lambda: {"gpus": [], "cpu_bf16": True})
    assert tiny("auto").precision == "bfloat16"


def test_concrete_precision_does_not_probe(monkeypatch):
    def fail():
        raise AssertionError("probed")

    monkeypatch.setattr(P, "probe_hardware", fail)
    assert [P.resolve_precision(p) for p in ("float32", "bfloat16", "float16")] == ["float32", "bfloat16", "float16"]


def test_cpu_flags_read_from_cpuinfo(tmp_path):
    f = tmp_path / "cpuinfo"
    f.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512f avx512_bf16 amx_tile\n\nprocessor\t: 1\n")
    assert {"avx512_bf16", "amx_tile"} <= P._cpu_flags(f)
    assert P._cpu_flags(tmp_path / "missing") == set()


@pytest.mark.parametrize("bad", ["fp16", "bf16", None, 16])
def test_bad_precision(bad):
    assert not Config("YX", precision=bad).is_valid()
    with pytest.raises(ValueError, match="precision must be one of"):
        P.resolve_precision(bad)


def test_predict_rejects_bad_precision():
    with pytest.raises(ValueError, match="precision must be one of"):
        tiny("float32").predict(np.ones((32, 32), np.float32), "YX", precision="half")


def test_float16_3d_without_gpu_names_the_fix(monkeypatch):
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    with pytest.raises(ValueError, match="needs a GPU for a 3D network"):
        tiny("float16", axes="ZYX")


def test_float16_trains_with_loss_scaling():
    from keras.optimizers import LossScaleOptimizer

    model = tiny("float16")
    model.prepare_for_training()
    assert isinstance(model.keras_model.optimizer, LossScaleOptimizer)
    other = tiny("bfloat16")
    other.prepare_for_training()
    assert not isinstance(other.keras_model.optimizer, LossScaleOptimizer)


def test_bf16_training_saves_float32_weights_that_reload(tmp_path):
    model = tiny("bfloat16", tmp_path=tmp_path)
    X, Y = pairs()
    history = model.train(X, Y, (X[:2], Y[:2]))
    assert np.isfinite(history.history["loss"]).all()
    dtypes = set()
    with h5py.File(model.logdir / "weights_last.h5", "r") as f:
        f.visititems(lambda k, v: dtypes.add(str(v.dtype)) if isinstance(v, h5py.Dataset) else None)
    assert dtypes == {"float32"}
    img = np.random.default_rng(5).random((40, 48), dtype=np.float32)
    loaded = DeepContrast(None, "m", basedir=str(tmp_path))
    assert loaded.precision == "bfloat16"  # the config's precision is kept
    np.testing.assert_array_equal(loaded.predict(img, "YX", precision="float32"),
                                  model.predict(img, "YX", precision="float32"))


def test_predict_bf16_within_tolerance_of_float32():
    model = tiny("float32")
    img = np.random.default_rng(1).gamma(2.0, 50.0, (64, 80)).astype(np.float32)
    ref = model.predict(img, "YX", physical=False)
    bf16 = model.predict(img, "YX", physical=False, precision="bfloat16")
    dev = np.abs(bf16 - ref).max() / np.ptp(ref)
    assert bf16.dtype == np.float32 and 0 < dev < 0.005
    assert model.predict(img, "YX", physical=False, precision="float32").tobytes() == ref.tobytes()
    # a model trained in bfloat16 predicts in float32 exactly as a float32 model with its weights
    twin = tiny("bfloat16")
    twin.keras_model.set_weights(model.keras_model.get_weights())
    np.testing.assert_array_equal(twin.predict(img, "YX", physical=False, precision="float32"), ref)
    np.testing.assert_array_equal(twin.predict(img, "YX", physical=False), bf16)


def test_tiled_bf16_within_one_percent_of_untiled_and_halo_per_precision():
    model = tiny("float32")
    img = np.random.default_rng(2).gamma(2.0, 50.0, (96, 112)).astype(np.float32)
    whole = model.predict(img, "YX", precision="bfloat16")
    tiled = model.predict(img, "YX", n_tiles=(3, 2), precision="bfloat16")
    assert np.abs(tiled - whole).max() <= 0.01 * np.ptp(whole)
    assert len(model._halo_cache) == 1 and next(iter(model._halo_cache))[1] == "bfloat16"
    model.tile_halo()  # outside predict: the model's own precision
    assert next(iter(model._halo_cache))[1] == "float32"


def _graph_dtypes(graph_def):
    from tensorflow.core.framework import types_pb2

    found = set()
    for node in graph_def.node:
        for v in node.attr.values():
            if v.type:
                found.add(types_pb2.DataType.Name(v.type))
            found.update(types_pb2.DataType.Name(t) for t in v.list.type)
    return found


def test_fiji_export_of_bf16_trained_model_is_float32_and_passes_audit(tmp_path):
    import zipfile

    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    from deepcontrast.export import export_fiji
    from deepcontrast.export._freeze import audit_graph_def

    model = tiny("bfloat16", tmp_path=tmp_path)
    X, Y = pairs()
    model.train(X, Y, (X[:2], Y[:2]))
    zip_path = export_fiji(model, tmp_path / "export.zip")
    out = tmp_path / "unzipped"
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(out)
    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((out / "saved_model.pb").read_bytes())
    (mg,) = sm.meta_graphs
    assert audit_graph_def(mg.graph_def) == []
    dtypes = _graph_dtypes(mg.graph_def)
    assert "DT_FLOAT" in dtypes and not dtypes & {"DT_BFLOAT16", "DT_HALF"}
    x = np.random.default_rng(1).random((2, 24, 24, 1), dtype=np.float32)
    with tf.Graph().as_default() as graph, tf.compat.v1.Session(graph=graph) as sess:
        sig = tf.compat.v1.saved_model.loader.load(sess, ["serve"], str(out)).signature_def["serving_default"]
        y = sess.run(sig.outputs["output"].name, {sig.inputs["input"].name: x})
    y32 = P.float32_network(model).predict(x, verbose=0)
    assert np.std(y32) > 1e-3
    np.testing.assert_allclose(y, y32, rtol=1e-5, atol=1e-5)


def test_bioimageio_export_of_bf16_model_passes_test_model(tmp_path, monkeypatch):
    pytest.importorskip("bioimageio.core")
    from bioimageio.core import test_model

    from deepcontrast.export import export_bioimageio

    model = tiny("bfloat16", tmp_path=tmp_path)
    path = export_bioimageio(model, tmp_path / "pkg.zip", authors=["Ada Lovelace"])
    monkeypatch.chdir(tmp_path)
    summary = test_model(path)
    assert summary.status == "passed", summary.format()
