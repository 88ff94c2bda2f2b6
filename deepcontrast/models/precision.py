"""Numerical precision of the network: float32, or mixed bfloat16 / float16.

Mixed precision computes the U-Net's convolutions in a 16-bit type while its weights stay
float32 variables. The head of the network (the final 1x1 convolution, the residual addition
of the input, the last activation and, for probabilistic nets, the scale branch) runs in
float32, so the output, the loss and the residual path keep full precision, and the saved
weights and every export are float32 as without mixed precision.

``'auto'`` (:func:`resolve_precision`) picks bfloat16 where the hardware computes it natively
(GPUs of compute capability >= 8.0; CPUs with AVX-512 BF16 or AMX), float16 on older GPUs
(trained with loss scaling), and float32 otherwise; and float32 wherever the machine's 16-bit
convolution kernels fail a self-test against float32 (:func:`deepcontrast.models.kernels.check_kernels`).
"""
import logging
from pathlib import Path

from .kernels import check_kernels, float32_gradient_layer, standard_layer_class

logger = logging.getLogger(__name__)

__all__ = ["PRECISIONS", "resolve_precision", "probe_hardware", "with_precision", "model_precision"]

#: accepted values of ``Config(precision=...)`` and ``predict(..., precision=...)``
PRECISIONS = ("auto", "float32", "bfloat16", "float16")

_POLICY = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
#: CPU flags (Linux /proc/cpuinfo) of native bfloat16 arithmetic
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
#: first layer of CSBDeep's U-Net head: the layer after the last block of the body
_BODY_LAST_PREFIX = "up_level_0_no_"


def check_precision(precision):
    """Return ``precision`` if it is one of :data:`PRECISIONS`, else raise a ValueError."""
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(repr(p) for p in PRECISIONS)}, got {precision!r}")
    return precision


def _cpu_flags(cpuinfo="/proc/cpuinfo"):
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def probe_hardware():
    """What the machine computes natively.

    Returns
    -------
    dict
        ``gpus``: list of the compute capabilities ``(major, minor)`` of the visible GPUs
        (``None`` for a GPU that reports none); ``cpu_bf16``: whether the CPU has AVX-512 BF16
        or AMX (read from ``/proc/cpuinfo``, False where that file does not exist).
    """
    import tensorflow as tf

    gpus = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            cc = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        except Exception:  # details are not available on every platform
            cc = None
        gpus.append(tuple(cc) if cc else None)
    return {"gpus": gpus, "cpu_bf16": bool(_cpu_flags() & set(_CPU_BF16_FLAGS))}


def resolve_precision(precision, n_dim=None):
    """The concrete precision (``'float32'``, ``'bfloat16'`` or ``'float16'``) for ``precision``.

    ``'auto'`` takes the 16-bit type the hardware computes natively (:func:`probe_hardware`)
    only if this machine's convolution kernels in that type pass the self-test
    (:func:`deepcontrast.models.kernels.check_kernels`: forward and both gradients within
    tolerance of float32), and float32 otherwise; the choice and its reason are logged.

    Parameters
    ----------
    precision : str
        One of :data:`PRECISIONS`.
    n_dim : {2, 3} or None
        Dimensionality of the network's convolutions, for the kernel self-test (``None``: both).

    Returns
    -------
    str

    Raises
    ------
    ValueError
        An unknown precision.

    Examples
    --------
    >>> resolve_precision('float32')
    'float32'
    """
    if check_precision(precision) != "auto":
        return precision
    hw = probe_hardware()
    if hw["gpus"]:
        cc = hw["gpus"][0]
        if cc is not None and tuple(cc) >= (8, 0):
            choice, why = "bfloat16", f"GPU of compute capability {cc[0]}.{cc[1]} (>= 8.0) computes bfloat16 natively"
        elif cc is not None:
            choice, why = "float16", f"GPU of compute capability {cc[0]}.{cc[1]} (< 8.0) has no fast bfloat16"
        else:
            choice, why = "float32", "the GPU reports no compute capability"
    elif hw["cpu_bf16"]:
        choice, why = "bfloat16", "the CPU has AVX-512 BF16 / AMX"
    else:
        choice, why = "float32", "no GPU and no native bfloat16 on the CPU"
    if choice != "float32":
        checks = [check_kernels(choice, n) for n in ((2, 3) if n_dim is None else (n_dim,))]
        failed = [c for c in checks if not c.ok]
        if failed:
            logger.warning("precision 'auto': float32, although %s: the self-test found %s", why,
                           "; ".join(str(c) for c in failed))
            return "float32"
        why += f"; its {'/'.join(f'{c.n_dim}D' for c in checks)} convolution kernels pass the self-test"
    logger.info("precision 'auto': %s (%s)", choice, why)
    return choice


def model_precision(keras_model):
    """The precision a network built by :func:`with_precision` computes its body in."""
    for layer in keras_model.layers:
        compute = layer.dtype_policy.compute_dtype
        if compute != "float32":
            return compute
    return "float32"


def _head_names(keras_model):
    names = [layer.name for layer in keras_model.layers]
    last = [i for i, n in enumerate(names) if n.startswith(_BODY_LAST_PREFIX)]
    if not last:
        raise ValueError(f"cannot find the end of the U-Net body (a layer named {_BODY_LAST_PREFIX}*) in "
                         f"{keras_model.name}; mixed precision needs CSBDeep's U-Net")
    return set(names[max(last) + 1:])


def with_precision(keras_model, precision):
    """A copy of CSBDeep's U-Net ``keras_model`` computing in ``precision``, with its weights.

    The body (all convolutions up to the last block) runs under Keras' mixed policy of
    ``precision``; the input, the head (final convolution, residual addition, last activation,
    probabilistic scale) and all weights are float32.

    Parameters
    ----------
    keras_model : keras.Model
        A network built by ``csbdeep.internals.nets.common_unet`` (any precision).
    precision : str
        ``'float32'``, ``'bfloat16'`` or ``'float16'``.

    Returns
    -------
    keras.Model

    Where this machine's 16-bit kernels fail the self-test
    (:func:`deepcontrast.models.kernels.check_kernels`) in their gradients only, the body's
    convolutions compute their gradients in float32 (forward pass still 16-bit), with a logged
    warning.

    Raises
    ------
    ValueError
        ``'auto'`` (resolve it first), ``'float16'`` for a 3D network without a GPU, or a
        16-bit forward convolution that fails the self-test on this machine.
    """
    import keras

    if check_precision(precision) == "auto":
        raise ValueError("with_precision needs a concrete precision; pass resolve_precision('auto')")
    head = _head_names(keras_model)
    if precision == "float16" and any(type(la).__name__ == "MaxPooling3D" for la in keras_model.layers):
        import tensorflow as tf

        if not tf.config.list_physical_devices("GPU"):
            raise ValueError("precision 'float16' needs a GPU for a 3D network (TensorFlow has no float16 "
                             "MaxPool3D on the CPU); use precision 'bfloat16', 'float32' or 'auto'")

    grad32 = precision != "float32" and _gradients_need_float32(keras_model, precision)

    def clone(layer):
        dtype = "float32" if layer.name in head else _POLICY[precision]
        if isinstance(layer, keras.layers.Lambda):  # its config holds Python bytecode; reuse the function
            return keras.layers.Lambda(layer.function, name=layer.name, dtype=dtype)
        cls = standard_layer_class(layer)
        if grad32 and dtype != "float32" and issubclass(cls, keras.layers.Conv3D if grad32 == 3 else keras.layers.Conv2D):
            cls = float32_gradient_layer(cls)
        return cls.from_config({**layer.get_config(), "dtype": dtype})

    uncompiled = keras.Model(keras_model.inputs, keras_model.outputs, name=keras_model.name)  # shares the layers
    net = keras.models.clone_model(uncompiled, clone_function=clone)
    net.set_weights(keras_model.get_weights())
    return net


def _gradients_need_float32(keras_model, precision):
    """0, or the dimensionality of the convolutions whose 16-bit gradient kernels fail the self-test.

    Raises a ValueError when even the forward convolution fails.
    """
    import keras

    n_dim = 3 if any(isinstance(la, keras.layers.Conv3D) for la in keras_model.layers) else 2
    check = check_kernels(precision, n_dim)
    if check.ok:
        return 0
    if not check.forward_ok:
        raise ValueError(f"precision {precision!r} computes wrong convolutions on this machine ({check}); "
                         "use precision='float32' or 'auto' (which then picks float32)")
    logger.warning("%s; this network computes its convolution gradients in float32 (forward pass in %s)",
                   check, precision)
    return n_dim


def training_optimizer(optimizer, precision):
    """``optimizer`` wrapped in dynamic loss scaling for float16 (unchanged otherwise)."""
    if precision != "float16":
        return optimizer
    from keras.optimizers import LossScaleOptimizer

    return optimizer if isinstance(optimizer, LossScaleOptimizer) else LossScaleOptimizer(optimizer)


def float32_network(model):
    """The float32 network of a CARE-like ``model`` (what exports write, whatever it trains in).

    The weights are shared in value (copied), so the export of a model trained in mixed
    precision is the same float32 graph an all-float32 model with these weights gives.
    """
    net_for = getattr(model, "_net_for", None)
    return net_for("float32") if net_for is not None else model.keras_model
