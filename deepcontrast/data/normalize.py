"""Per-plane percentile normalization: every YX plane of a stack on its own percentiles (no TensorFlow).

Used by 2D networks applied to the planes of a stack (the planes are the samples) and by 3D
networks trained on patches of stacks whose planes were normalized on their own
(:func:`normalize_planes`, the default of :class:`~deepcontrast.data.DegradedRawData`).
"""
import numpy as np
from csbdeep.data import PercentileNormalizer
from csbdeep.utils import axes_check_and_normalize, normalize_mi_ma

__all__ = ["SlicePercentileNormalizer", "normalize_planes"]

#: percentiles of the per-plane normalization of training stacks (those :meth:`predict` uses)
PLANE_PERCENTILES = (2.0, 99.8)


class SlicePercentileNormalizer(PercentileNormalizer):
    """CSBDeep's percentile normalization, computed separately for every YX plane.

    Percentiles are taken over Y and X only, for every sample, Z plane (and channel) on its
    own. When a 2D network restores a stack plane by plane, the planes are the sample axis
    ``S`` of the network input; for a 3D network (axes ``SZYXC``) every Z plane of the input
    volume is normalized on its own. A stack-wide normalization maps the deep, attenuated
    planes to a narrow, dim band of the network's input range, unlike anything the network saw
    in training when the training stacks were normalized per plane (:func:`normalize_planes`).
    This normalizer maps each plane's ``pmin``/``pmax`` percentiles to 0/1 and undoes it per
    plane afterwards, so every iterate keeps each plane's intensity scale. For a single 2D
    image it equals :class:`csbdeep.data.PercentileNormalizer`.

    Parameters
    ----------
    pmin, pmax : float
        Low and high percentiles (CSBDeep's defaults 2 and 99.8).
    **kwargs
        Passed to :class:`csbdeep.data.PercentileNormalizer`.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.stack([np.linspace(0, 1, 100), np.linspace(0, 10, 100)]).reshape(2, 10, 10, 1)
    >>> n = SlicePercentileNormalizer(pmin=0, pmax=100)
    >>> y = n.before(x, 'SYXC')
    >>> float(y[0].max()), float(y[1].max())
    (1.0, 1.0)
    >>> bool(np.allclose(n.after(y, None, 'SYXC')[0], x))
    True
    """

    def before(self, x, axes):
        """Normalize every YX plane of ``x`` (every sample, Z plane, channel) on its own percentiles."""
        self.axes_before = axes_check_and_normalize(axes, x.ndim)
        axis = tuple(d for d, a in enumerate(self.axes_before) if a in "YX")
        self.mi = np.percentile(x, self.pmin, axis=axis, keepdims=True).astype(self.dtype, copy=False)
        self.ma = np.percentile(x, self.pmax, axis=axis, keepdims=True).astype(self.dtype, copy=False)
        return normalize_mi_ma(x, self.mi, self.ma, dtype=self.dtype, **self.kwargs)


def normalize_planes(img, axes, percentiles=PLANE_PERCENTILES):
    """Every YX plane of ``img`` mapped so that its percentiles ``percentiles`` go to 0 and 1.

    What :class:`SlicePercentileNormalizer` does at prediction time, applied to a training
    stack before patches are cut from it: a 3D network trained on such patches sees deep,
    attenuated planes at the same scale as shallow ones, as it will when it restores a stack
    normalized per plane. Percentile normalization is affine-equivariant, so patches later
    normalized again (CSBDeep's ``create_patches``) keep every plane's scale.

    Parameters
    ----------
    img : numpy.ndarray
        Image with axes ``axes`` (must contain Y and X).
    axes : str
        Its axes, e.g. ``'ZYX'``.
    percentiles : (float, float)
        Low and high percentiles (default 2 and 99.8, as :meth:`DeepContrast.predict` uses).

    Returns
    -------
    numpy.ndarray
        float32, same shape. A constant plane becomes 0.

    Examples
    --------
    >>> import numpy as np
    >>> img = np.stack([np.linspace(0, 1, 100), np.linspace(5, 25, 100)]).reshape(2, 10, 10)
    >>> y = normalize_planes(img, 'ZYX', (0, 100))
    >>> [float(y[z].min()) for z in (0, 1)], [float(y[z].max()) for z in (0, 1)]
    ([0.0, 0.0], [1.0, 1.0])
    """
    axes = axes_check_and_normalize(axes, img.ndim)
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r} must contain Y and X to normalize planes")
    axis = tuple(d for d, a in enumerate(axes) if a in "YX")
    x = np.asarray(img, np.float32)
    lo, hi = np.percentile(x, tuple(percentiles), axis=axis, keepdims=True).astype(np.float32)
    span = hi - lo
    return np.where(span > 0, (x - lo) / np.where(span > 0, span, 1), 0).astype(np.float32)
