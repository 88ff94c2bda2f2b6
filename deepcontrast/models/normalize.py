"""Percentile normalization with the percentiles fixed in advance (blockwise prediction).

The per-plane normalizer, :class:`~deepcontrast.data.SlicePercentileNormalizer`, lives in
:mod:`deepcontrast.data.normalize` (it needs no TensorFlow).
"""
import numpy as np
from csbdeep.data import PercentileNormalizer
from csbdeep.utils import axes_check_and_normalize, normalize_mi_ma

__all__ = ["FixedPercentileNormalizer"]


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
