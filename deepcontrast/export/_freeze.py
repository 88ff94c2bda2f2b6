"""Freeze a Keras model into a GraphDef that TensorFlow 1.15 (Fiji's runtime) can load.

Three steps, each a function so the tests can check them separately:

1. :func:`freeze_keras_model` traces the model with a fully dynamic input shape and turns its
   variables into constants (``convert_variables_to_constants_v2``);
2. :func:`make_tf115_compatible` removes what TF 1.15 does not understand: control-only
   ``NoOp`` nodes, internal ``_``-attributes, attributes TF 1.15's op definition lacks (only
   when they hold TF 2's default, i.e. when dropping them changes nothing) and attributes equal
   to TF 1.15's default (the loader adds them back);
3. :func:`audit_graph_def` lists every op or attribute TF 1.15 does not know (empty = loadable).

The TF 1.15 op definitions live in ``tf115_ops.json`` next to this module (see TF115_OPS.md).
"""
import copy
import functools
import json
import logging
from importlib import resources

log = logging.getLogger(__name__)

#: the name of the input placeholder and of the output node in exported graphs
INPUT_NAME, OUTPUT_NAME = "input", "output"


@functools.lru_cache(maxsize=1)
def tf115_ops():
    """Return the TensorFlow 1.15 op definitions: ``{op name: {attr name: default or None}}``.

    Defaults are ``AttrValue`` protos in protobuf JSON form (``json_format.MessageToDict``).
    """
    text = resources.files("deepcontrast.export").joinpath("tf115_ops.json").read_text()
    return json.loads(text)["ops"]


def _attr_dict(value):
    from google.protobuf import json_format

    return json_format.MessageToDict(value)


def _tf2_default(op_name, attr_name):
    """The default of ``attr_name`` in this TensorFlow's definition of ``op_name`` (or None)."""
    from tensorflow.python.framework import op_def_registry

    op_def = op_def_registry.get(op_name)
    if op_def is None:
        return None
    for a in op_def.attr:
        if a.name == attr_name and a.HasField("default_value"):
            return _attr_dict(a.default_value)
    return None


def freeze_keras_model(keras_model):
    """Trace ``keras_model`` for inputs of any spatial size and inline its weights as constants.

    Parameters
    ----------
    keras_model : keras.Model
        A model with exactly one input and one output.

    Returns
    -------
    tuple
        ``(graph_def, input_tensor_name, output_tensor_name)``; the input placeholder is named
        ``'input'`` and accepts ``None`` for the batch and every spatial dimension.

    Raises
    ------
    ValueError
        If the model has several inputs or outputs.
    """
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    if len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1:
        raise ValueError(
            f"can only export models with one input and one output, this one has "
            f"{len(keras_model.inputs)} inputs and {len(keras_model.outputs)} outputs"
        )
    x = keras_model.inputs[0]
    shape = [None] * (len(x.shape) - 1) + [x.shape[-1]]
    spec = tf.TensorSpec(shape, tf.dtypes.as_dtype(x.dtype), name=INPUT_NAME)
    fn = tf.function(lambda t: keras_model(t, training=False))
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function(spec))
    graph_def = frozen.graph.as_graph_def()
    (inp,) = [t.name for t in frozen.inputs]
    (out,) = [t.name for t in frozen.outputs]
    return graph_def, inp, out


def make_tf115_compatible(graph_def, *, ops=None):
    """Return a copy of ``graph_def`` stripped of everything TensorFlow 1.15 cannot read.

    Parameters
    ----------
    graph_def : tensorflow.compat.v1.GraphDef
        A frozen graph (no variables).
    ops : dict or None
        TF 1.15 op definitions as returned by :func:`tf115_ops` (default: the bundled ones).

    Returns
    -------
    tensorflow.compat.v1.GraphDef
        The cleaned graph: no ``NoOp`` nodes or control inputs to them, no ``_`` attributes,
        no attribute TF 1.15's op lacks, no attribute equal to TF 1.15's default.

    Raises
    ------
    ValueError
        If a node uses an op that TF 1.15 does not have, or sets an attribute that TF 1.15's op
        lacks to a non-default value (it cannot be dropped without changing the result).
    """
    ops = tf115_ops() if ops is None else ops
    gd = copy.deepcopy(graph_def)
    noops = {n.name for n in gd.node if n.op == "NoOp"}
    nodes = [n for n in gd.node if n.name not in noops]
    del gd.node[:]
    gd.node.extend(nodes)
    problems = []
    for node in gd.node:
        problems += _clean_node(node, ops, noops)
    if problems:
        raise ValueError(
            "the model's graph cannot be written for TensorFlow 1.15 (Fiji): "
            + "; ".join(problems)
            + ". Export to bioimage.io instead (export_bioimageio), or use layers TF 1.15 supports."
        )
    if gd.library.function:
        raise ValueError(
            "the frozen graph still contains functions "
            f"({', '.join(f.signature.name for f in gd.library.function)}); TF 1.15 loaders "
            "in Fiji cannot run them. Use plain Keras layers (no control flow) in the model."
        )
    return gd


def _clean_node(node, ops, noops):
    """Strip ``node`` in place for TF 1.15 (control inputs to ``noops``, ``_`` and default attributes).

    Returns the problems that cannot be stripped (unknown op, unknown attribute not at its default).
    """
    problems = []
    keep = [i for i in node.input if not (i.startswith("^") and i[1:] in noops)]
    del node.input[:]
    node.input.extend(keep)
    known = ops.get(node.op)
    if known is None:
        return [f"op {node.op!r} (node {node.name!r}) does not exist in TensorFlow 1.15"]
    for key in list(node.attr):
        if key.startswith("_"):
            del node.attr[key]
            continue
        value = _attr_dict(node.attr[key])
        if key not in known:
            if value == _tf2_default(node.op, key):
                del node.attr[key]
            else:
                problems.append(
                    f"attribute {key!r}={value} of op {node.op!r} (node {node.name!r}) "
                    f"does not exist in TensorFlow 1.15 and is not at its default"
                )
        elif known[key] is not None and value == known[key]:
            del node.attr[key]
    return problems


def audit_graph_def(graph_def, *, ops=None):
    """List what in ``graph_def`` TensorFlow 1.15 would not accept.

    Parameters
    ----------
    graph_def : tensorflow.compat.v1.GraphDef
    ops : dict or None
        TF 1.15 op definitions (default: the bundled ones).

    Returns
    -------
    list of str
        One message per unknown op or unknown attribute (internal ``_`` attributes are
        ignored) and per variable op; empty when TF 1.15 can load the graph.

    Examples
    --------
    >>> audit_graph_def(graph_def)  # doctest: +SKIP
    []
    """
    ops = tf115_ops() if ops is None else ops
    problems = []
    for node in graph_def.node:
        if node.op in ("VarHandleOp", "ReadVariableOp", "VariableV2", "Variable"):
            problems.append(f"node {node.name!r} is a variable op {node.op!r}: graph is not frozen")
        known = ops.get(node.op)
        if known is None:
            problems.append(f"op {node.op!r} (node {node.name!r}) not in TensorFlow 1.15")
            continue
        for key in node.attr:
            if not key.startswith("_") and key not in known:
                problems.append(f"attribute {key!r} of op {node.op!r} (node {node.name!r}) not in TensorFlow 1.15")
    for f in graph_def.library.function:
        problems.append(f"graph contains function {f.signature.name!r}")
    return problems
