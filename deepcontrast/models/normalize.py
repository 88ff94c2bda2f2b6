"""Percentile normalizers: per plane (2D networks over stacks) and with percentiles fixed in advance."""
import numpy as np
from csbdeep.data import PercentileNormalizer
from csbdeep.utils import axes_check_and_normalize, normalize_mi_ma

__all__ = ["SlicePercentileNormalizer", "FixedPercentileNormalizer"]


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


class FixedPercentileNormalizer(PercentileNormalizer):
    """Percentile normalization with the low/high values ``mi``/``ma`` given instead of computed.

    For volumes normalized piece by piece (blockwise prediction): the percentiles are
    computed once, from a sample of the whole volume, by the normalizer the in-memory
    prediction would use, and every piece is normalized (and mapped back by :meth:`after`)
    with those values, so there are no seams between pieces.

    Parameters
    ----------
    mi, ma : array_like
        Values mapped to 0 and 1, broadcastable against the input with the axes passed to
        :meth:`before` (e.g. shape ``(1, 1, 1, C)`` for ``'SYXC'``, or ``(S, 1, 1, C)`` per sample).
    pmin, pmax : float
        The percentiles ``mi``/``ma`` stand for (kept for the record).
    **kwargs
        Passed to :class:`csbdeep.data.PercentileNormalizer` (``do_after``, ``dtype``, ``clip`` ...).

    Examples
    --------
    >>> import numpy as np
    >>> n = FixedPercentileNormalizer(mi=np.float32(10), ma=np.float32(20))
    >>> n.before(np.array([[10, 15], [20, 30]]), 'YX').tolist()
    [[0.0, 0.5], [1.0, 2.0]]
    """

    def __init__(self, mi, ma, pmin=2, pmax=99.8, **kwargs):
        super().__init__(pmin=pmin, pmax=pmax, **kwargs)
        self.mi = np.asarray(mi, dtype=self.dtype)
        self.ma = np.asarray(ma, dtype=self.dtype)
        if self.mi.shape != self.ma.shape:
            raise ValueError(f"mi and ma must have the same shape, got {self.mi.shape} and {self.ma.shape}")

    def before(self, x, axes):
        """Normalize ``x`` with the given ``mi``/``ma``."""
        self.axes_before = axes_check_and_normalize(axes, x.ndim)
        if self.mi.ndim not in (0, x.ndim):
            raise ValueError(f"mi/ma of shape {self.mi.shape} do not broadcast against input of shape {x.shape} "
                             f"(axes {self.axes_before!r}); give them one entry per axis of the input")
        if self.mi.ndim == 0:
            self.mi, self.ma = self.mi.reshape((1,) * x.ndim), self.ma.reshape((1,) * x.ndim)
        return normalize_mi_ma(x, self.mi, self.ma, dtype=self.dtype, **self.kwargs)
