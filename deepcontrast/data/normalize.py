"""Per-plane percentile normalization for 2D networks applied to the planes of a stack (no TensorFlow)."""
import numpy as np
from csbdeep.data import PercentileNormalizer
from csbdeep.utils import axes_check_and_normalize, normalize_mi_ma

__all__ = ["SlicePercentileNormalizer"]


class SlicePercentileNormalizer(PercentileNormalizer):
    """CSBDeep's percentile normalization, computed separately for every sample (plane).

    When a 2D network restores a stack plane by plane, the planes are the sample axis ``S`` of
    the network input. A stack-wide normalization maps the deep, attenuated planes to a narrow,
    dim band of the network's input range, unlike anything it saw in training if the training
    patches were normalized per plane. This normalizer maps each plane's ``pmin``/``pmax``
    percentiles to 0/1 and undoes it per plane afterwards, so every iterate keeps each plane's
    intensity scale. For a single image (one sample) it equals
    :class:`csbdeep.data.PercentileNormalizer`.

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
        """Normalize every sample of ``x`` (axes with ``S``) on its own percentiles."""
        self.axes_before = axes_check_and_normalize(axes, x.ndim)
        axis = tuple(d for d, a in enumerate(self.axes_before) if a not in "SC")
        self.mi = np.percentile(x, self.pmin, axis=axis, keepdims=True).astype(self.dtype, copy=False)
        self.ma = np.percentile(x, self.pmax, axis=axis, keepdims=True).astype(self.dtype, copy=False)
        return normalize_mi_ma(x, self.mi, self.ma, dtype=self.dtype, **self.kwargs)
