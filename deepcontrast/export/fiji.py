"""Export models in CSBDeep's SavedModel zip format, loadable by TensorFlow 1.15 (Fiji).

CSBDeep's own ``export_TF`` raises ``NotImplementedError`` under Keras 3, and graphs written by
TF 2 carry ops and attributes that the TensorFlow 1.15 runtime of Fiji's CSBDeep plugin rejects
(e.g. ``NodeDef mentions attr 'explicit_paddings'``). :func:`export_fiji` freezes the network
(weights as constants), removes everything TF 1.15 does not know and writes a TF1-style
SavedModel (tag ``serve``, signature ``serving_default``, input ``input``, output ``output``).
"""
import json
import logging
import tempfile
from pathlib import Path

from ..internals.files import atomic_write, zip_dir
from ..internals.model_folder import CONFIG_FILE, SIDE_FILE
from ._freeze import INPUT_NAME, OUTPUT_NAME, audit_graph_def, freeze_keras_model, make_tf115_compatible

log = logging.getLogger(__name__)

SERVE_TAG = "serve"
SIGNATURE_KEY = "serving_default"


def csbdeep_meta(model):
    """The ``meta.json`` that CSBDeep's ``export_TF`` writes, for ``model``.

    Parameters
    ----------
    model : csbdeep.models.CARE
        A CARE-like model (``config.axes``, ``config.probabilistic``, ``_axes_div_by``,
        ``_axes_tile_overlap``).

    Returns
    -------
    dict
        ``type`` (class name), ``version`` (csbdeep version), ``probabilistic``, ``axes``,
        ``axes_div_by`` and ``tile_overlap`` (one entry per axis of ``config.axes``).
    """
    from csbdeep.version import __version__ as csbdeep_version

    axes = model.config.axes
    return {
        "type": model.__class__.__name__,
        "version": csbdeep_version,
        "probabilistic": bool(model.config.probabilistic),
        "axes": axes,
        "axes_div_by": [int(v) for v in model._axes_div_by(axes)],
        "tile_overlap": [int(v) for v in model._axes_tile_overlap(axes)],
    }


def frozen_tf115_graph(model):
    """Freeze ``model.keras_model`` (in float32) and make it loadable by TensorFlow 1.15.

    Returns
    -------
    tuple
        ``(graph_def, input_tensor_name, output_tensor_name)``.
    """
    from ..models.precision import float32_network

    graph_def, inp, out = freeze_keras_model(float32_network(model))
    return make_tf115_compatible(graph_def), inp, out


def write_tf1_saved_model(graph_def, input_tensor, output_tensor, export_dir):
    """Write a frozen GraphDef as a TF1-style SavedModel directory.

    The graph is imported into a fresh ``tf.Graph`` and saved with
    ``tf.compat.v1.saved_model.Builder`` under tag ``serve`` with signature
    ``serving_default`` (input ``input``, output ``output``); the saved graph is cleaned and
    audited again, so no attribute the builder re-added survives.

    Raises
    ------
    ValueError
        If the written graph still contains something TensorFlow 1.15 does not know.
    """
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    v1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        x, y = tf.graph_util.import_graph_def(graph_def, name="", return_elements=[input_tensor, output_tensor])
        if x.name != f"{INPUT_NAME}:0":
            x = tf.identity(x, name=INPUT_NAME)
        y = tf.identity(y, name=OUTPUT_NAME)
        with v1.Session(graph=graph) as sess:
            builder = v1.saved_model.builder.SavedModelBuilder(str(export_dir))
            sig = v1.saved_model.signature_def_utils.predict_signature_def(
                inputs={INPUT_NAME: x}, outputs={OUTPUT_NAME: y}
            )
            builder.add_meta_graph_and_variables(
                sess, [SERVE_TAG], signature_def_map={SIGNATURE_KEY: sig}, strip_default_attrs=True
            )
            builder.save()
    pb = Path(export_dir) / "saved_model.pb"
    saved = saved_model_pb2.SavedModel()
    saved.ParseFromString(pb.read_bytes())
    for mg in saved.meta_graphs:
        clean = make_tf115_compatible(mg.graph_def)
        mg.graph_def.CopyFrom(clean)
        problems = audit_graph_def(mg.graph_def)
        if problems:
            raise ValueError("exported graph is not loadable by TensorFlow 1.15: " + "; ".join(problems))
    pb.write_bytes(saved.SerializeToString())
    (Path(export_dir) / "variables").mkdir(exist_ok=True)
    # TF 2 writes a fingerprint that TF 1.x neither needs nor knows
    (Path(export_dir) / "fingerprint.pb").unlink(missing_ok=True)
    return Path(export_dir)


def export_fiji(model, fname=None):
    """Export ``model`` as a CSBDeep SavedModel zip that Fiji's CSBDeep plugin (TF 1.15) can load.

    The zip holds ``saved_model.pb`` (frozen graph: weights are constants, only ops and
    attributes TensorFlow 1.15 knows, default-valued attributes stripped; tag ``serve``,
    signature ``serving_default`` with input ``input`` and output ``output``), an empty
    ``variables/`` folder, CSBDeep's ``meta.json`` (``type``, ``version``, ``probabilistic``,
    ``axes``, ``axes_div_by``, ``tile_overlap``), the model's ``config.json`` (the network, as
    in its folder) and, for a DeepContrast model, ``deepcontrast.json`` with its settings
    (degradation settings, per-plane normalization, precision, prediction memory; no history).
    The plugin reads neither file: they document the model.

    The network expects *normalized* input (as in Python prediction: percentiles 2 and 99.8
    mapped to 0 and 1, CSBDeep's ``PercentileNormalizer`` defaults); set the same percentiles in
    Fiji's CSBDeep plugin, which normalizes before running the graph. The plugin normalizes
    the whole image at once: a 3D model that normalizes every Z plane on its own
    (``normalize_per_slice``, the default of 3D models trained on ``DegradedRawData``) sees
    deep planes dimmer in Fiji than in training, and the export logs a warning saying so.

    Parameters
    ----------
    model : deepcontrast.DeepContrast or csbdeep.models.CARE
        The model to export (any CARE-like model: ``keras_model``, ``config``, ``logdir``).
    fname : str or pathlib.Path or None
        Path of the zip; ``None`` means ``<model folder>/TF_SavedModel.zip`` as in CSBDeep.
        An existing file is replaced (atomically: the new zip is written to a temporary file
        first, so a failed export never leaves a broken zip).

    Returns
    -------
    pathlib.Path
        Path of the written zip.

    Raises
    ------
    ValueError
        If ``fname`` is None and the model has no folder (``basedir=None``), or the network
        uses ops that TensorFlow 1.15 lacks.

    Examples
    --------
    >>> model = DeepContrast(None, 'my_model', basedir='models')  # doctest: +SKIP
    >>> export_fiji(model)  # doctest: +SKIP
    PosixPath('models/my_model/TF_SavedModel.zip')
    """
    if fname is None:
        if getattr(model, "logdir", None) is None:
            raise ValueError(
                "the model has no folder (basedir=None), so there is no default export path; "
                "pass fname='some/path/TF_SavedModel.zip'"
            )
        fname = Path(model.logdir) / "TF_SavedModel.zip"
    fname = Path(fname)
    if fname.suffix != ".zip":
        fname = fname.with_name(fname.name + ".zip")
    fname.parent.mkdir(parents=True, exist_ok=True)

    if getattr(model.config, "normalize_per_slice", False) and getattr(model.config, "n_dim", 2) == 3:
        log.warning("%s normalizes every Z plane on its own, but Fiji's CSBDeep plugin normalizes the whole stack: "
                    "deep planes will look dimmer to the network than in training; restore in Python "
                    "(predict, deepcontrast predict) or with the bioimage.io export, which declares per-plane "
                    "normalization", getattr(model, "name", None) or "the model")
    graph_def, inp, out = frozen_tf115_graph(model)
    meta = csbdeep_meta(model)
    from ..models.config import split_config

    config, settings = split_config(model.config)

    def write(tmp_zip):
        with tempfile.TemporaryDirectory() as tmp:
            export_dir = Path(tmp) / "model"
            write_tf1_saved_model(graph_def, inp, out, export_dir)
            (export_dir / "meta.json").write_text(json.dumps(meta, indent=4))
            (export_dir / CONFIG_FILE).write_text(json.dumps(config, indent=4))
            if settings:
                (export_dir / SIDE_FILE).write_text(json.dumps(settings, indent=4))
            zip_dir(export_dir, tmp_zip)

    atomic_write(fname, write)
    log.info("model exported in CSBDeep's SavedModel format (TensorFlow 1.15 compatible): %s", fname.resolve())
    return fname
