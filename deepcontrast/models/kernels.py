"""Are this machine's 16-bit convolution kernels right? A self-test, and a workaround where not.

A mixed-precision U-Net computes three convolution kernels per layer in 16 bits: the forward
convolution, the gradient with respect to its input and the gradient with respect to its
filter. A wrong kernel is not a TensorFlow error: TensorFlow 2.21's oneDNN bfloat16
``Conv3DBackpropFilterV2`` on CPUs with AVX-512 BF16 returned NaN (and finite values off by
up to 3e38) at some shapes of a 3D U-Net, so every 3D training in bfloat16 ended with NaN
weights, while 2D networks trained. Such a defect belongs to one machine (CPU, GPU, library
build), so it is tested on the machine at hand, not assumed:

* :func:`check_kernels` computes the three kernels in bfloat16 or float16 at shapes the
  U-Nets use (2D or 3D; 3x3 and 5x5 filters, small and large channel counts, the small Z
  extents of a 3D net's deeper levels) and compares them with float32. It takes about a
  second and is done once per process, dtype, dimensionality and device.
* :func:`float32_gradient_layer` gives a convolution layer whose forward pass stays in the
  16-bit type while both of its gradients are computed in float32 (from the same 16-bit
  inputs), used for an explicit ``precision='bfloat16'`` where the gradient kernels fail.
  ``precision='auto'`` picks float32 instead (see
  :func:`deepcontrast.models.precision.resolve_precision`).
"""
import logging

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["check_kernels", "KernelCheck", "float32_gradient_layer", "TOLERANCE"]

#: largest accepted error of a 16-bit kernel: max |16-bit - float32| / max |float32| of its
#: output. Right kernels stay near 0.05 (bfloat16 keeps 8 significant bits; measured 0.003-0.05
#: over the shapes below); the broken one gave NaN or errors of 1e38.
TOLERANCE = 0.25

#: (input shape (N, *spatial, C_in), filter size, C_out) per dimensionality: the shapes of the
#: levels of U-Nets of depth 1-3 and width 8-64 in small training batches, including the
#: 3D shapes where broken bfloat16 filter gradients were found: input (2, 2, 32, 32, 16),
#: 3x3x3 -> 32 on one CPU with AVX-512 BF16; on a CPU with AMX, inputs (2, 4, 32, 32, C_in) with
#: C_in >= 176 (NaN; the up-level of a width-64 U-Net of depth 2 or 3 takes 256) and
#: (1, 4, 32, 32, 256) (errors of 0.6)
SHAPES = {
    2: [((4, 64, 64, 8), 3, 16), ((4, 32, 32, 32), 3, 64), ((4, 16, 16, 64), 3, 128), ((4, 8, 8, 128), 5, 128)],
    3: [((2, 2, 32, 32, 16), 3, 32), ((2, 2, 16, 16, 32), 3, 64), ((2, 4, 16, 16, 32), 5, 32),
        ((2, 8, 32, 32, 8), 3, 16), ((2, 1, 8, 8, 64), 3, 128), ((2, 4, 32, 32, 256), 3, 128),
        ((1, 4, 32, 32, 256), 3, 128)],
}
KERNELS = ("forward", "input gradient", "filter gradient")
_CACHE = {}


class KernelCheck(dict):
    """Result of :func:`check_kernels`: a dict ``kernel name -> worst error`` plus a verdict.

    Attributes
    ----------
    dtype : str
        The 16-bit type tested.
    n_dim : int
        2 or 3.
    device : str
        Where TensorFlow ran the kernels.
    failed : list of str
        Kernels whose error exceeded :data:`TOLERANCE` (or held NaN/Inf), with the shape.
    """

    def __init__(self, dtype, n_dim, device, errors, failed):
        super().__init__(errors)
        self.dtype, self.n_dim, self.device, self.failed = dtype, n_dim, device, failed

    @property
    def ok(self):
        """bool: every kernel within :data:`TOLERANCE` of float32."""
        return not self.failed

    @property
    def forward_ok(self):
        """bool: the forward convolution (all that prediction needs) is right."""
        return not any(f.startswith("forward") for f in self.failed)

    def __str__(self):
        worst = ", ".join(f"{k} {v:.3g}" for k, v in self.items())
        head = f"{self.dtype} {self.n_dim}D convolution kernels on {self.device} vs float32 (max rel. error: {worst})"
        return head + (": right" if self.ok else f": WRONG ({'; '.join(self.failed)})")


def _device():
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return gpus[0].name if gpus else "CPU"


def _errors(x, w, dy, dtype):
    """Forward output and both gradients of a SAME convolution in ``dtype``, as float32 arrays."""
    import tensorflow as tf

    x, w, dy = (tf.cast(tf.constant(a), dtype) for a in (x, w, dy))
    with tf.GradientTape() as tape:
        tape.watch([x, w])
        conv = tf.nn.conv3d if len(x.shape) == 5 else tf.nn.conv2d
        y = conv(x, w, strides=[1] * len(x.shape), padding="SAME")
    gx, gw = tape.gradient(y, [x, w], output_gradients=dy)
    return [np.asarray(tf.cast(t, tf.float32)) for t in (y, gx, gw)]


def _relative_error(got, ref):
    bad = ~np.isfinite(got)
    if bad.any():
        return float("inf"), f"{int(bad.sum())} of {bad.size} values NaN/Inf"
    scale = float(np.max(np.abs(ref))) or 1.0
    err = float(np.max(np.abs(got - ref))) / scale
    return err, f"max rel. error {err:.3g}"


def check_kernels(dtype="bfloat16", n_dim=3, *, shapes=None, seed=0):
    """Compare this machine's 16-bit convolution kernels with float32.

    Runs the forward convolution and its input and filter gradients in ``dtype`` and in
    float32 on the same (16-bit representable) random data, at the shapes U-Nets use
    (:data:`SHAPES`), on the device TensorFlow picks (the first GPU, else the CPU). The
    result is cached per process for the default shapes.

    Parameters
    ----------
    dtype : {'bfloat16', 'float16'}
        The 16-bit type to test.
    n_dim : {2, 3}
        2D or 3D convolutions.
    shapes : list or None
        ``[(input shape, filter size, output channels), ...]``; default :data:`SHAPES`.
    seed : int
        Seed of the test data.

    Returns
    -------
    KernelCheck
        The worst error of each kernel and the list of failures (``.ok``, ``.forward_ok``).

    Examples
    --------
    >>> result = check_kernels('bfloat16', 3)   # doctest: +SKIP
    >>> result.ok, str(result)                  # doctest: +SKIP
    (True, 'bfloat16 3D convolution kernels on CPU vs float32 (...): right')
    """
    if dtype not in ("bfloat16", "float16"):
        raise ValueError(f"check_kernels tests 'bfloat16' or 'float16', got {dtype!r}")
    if n_dim not in (2, 3):
        raise ValueError(f"n_dim must be 2 or 3, got {n_dim!r}")
    device = _device()
    key = (dtype, n_dim, device)
    if shapes is None and key in _CACHE:
        return _CACHE[key]
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    errors, failed = dict.fromkeys(KERNELS, 0.0), []
    for shape, k, c_out in (SHAPES[n_dim] if shapes is None else shapes):
        def data(s):  # values exactly representable in 16 bits: the float32 reference sees the same numbers
            return np.asarray(tf.cast(tf.cast(rng.standard_normal(s).astype(np.float32), dtype), tf.float32))

        x = data(shape)
        w = data((k,) * n_dim + (shape[-1], c_out)) / np.sqrt(k ** n_dim * shape[-1])
        dy = data(shape[:-1] + (c_out,))
        ref = _errors(x, w, dy, tf.float32)
        got = _errors(x, w, dy, dtype)
        for name, g, r in zip(KERNELS, got, ref):
            err, what = _relative_error(g, r)
            errors[name] = max(errors[name], err)
            if err > TOLERANCE:
                failed.append(f"{name} at input {shape}, filter {(k,) * n_dim + (shape[-1], c_out)}: {what}")
    result = KernelCheck(dtype, n_dim, device, errors, failed)
    (logger.info if result.ok else logger.warning)("%s", str(result))
    if shapes is None:
        _CACHE[key] = result
    return result


_GRAD32 = {}


def float32_gradient_layer(cls):
    """Subclass of the Keras convolution layer ``cls`` whose gradients are computed in float32.

    The forward convolution runs in the layer's compute dtype (e.g. bfloat16); the gradients
    with respect to the input and the kernel are computed by float32 kernels from the same
    16-bit values and cast back. Saved weights, configs and exports are those of ``cls``
    (the subclass adds no weights and no config keys).

    Parameters
    ----------
    cls : type
        ``keras.layers.Conv2D``, ``Conv3D`` (or another ``BaseConv`` subclass).

    Returns
    -------
    type
    """
    if cls in _GRAD32 or getattr(cls, "_float32_gradients", False):
        return _GRAD32.get(cls, cls)
    import tensorflow as tf

    class Float32Gradients(cls):
        _float32_gradients = True

        def convolution_op(self, inputs, kernel):
            conv = super().convolution_op
            if inputs.dtype == tf.float32:
                return conv(inputs, kernel)
            kernel = tf.cast(kernel, inputs.dtype)

            @tf.custom_gradient
            def op(x, k):
                def grad(dy):
                    x32, k32 = tf.cast(x, tf.float32), tf.cast(k, tf.float32)
                    with tf.GradientTape() as tape:
                        tape.watch([x32, k32])
                        y32 = conv(x32, k32)
                    gx, gk = tape.gradient(y32, [x32, k32], output_gradients=tf.cast(dy, tf.float32))
                    return tf.cast(gx, x.dtype), tf.cast(gk, k.dtype)

                return conv(x, k), grad

            return op(inputs, kernel)

    Float32Gradients.__name__ = Float32Gradients.__qualname__ = f"{cls.__name__}Float32Gradients"
    _GRAD32[cls] = Float32Gradients
    return Float32Gradients


def standard_layer_class(layer):
    """The Keras class of ``layer`` without the float32-gradient wrapper."""
    cls = type(layer)
    return cls.__mro__[1] if getattr(cls, "_float32_gradients", False) else cls
