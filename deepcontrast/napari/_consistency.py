"""The Restore widget's check of the iterates against the raw data: residual maps and restored depth.

After a restoration of a (small) layer, :func:`check_iterates` runs
:func:`deepcontrast.consistency.check_consistency` on the iterates with the model's training
degradation (``'auto'``, calibrated on the layer, when the model records none) and computes the
residual map of every iterate, so that choosing an iteration in the widget only swaps arrays.
"""
from types import SimpleNamespace

import numpy as np

__all__ = ["check_iterates", "RESIDUAL_LIMITS", "RESIDUAL_COLORMAP"]

#: contrast limits (noise units) of the residual layer: beyond +-5 the raw and the iterate disagree
RESIDUAL_LIMITS = (-5.0, 5.0)
#: blue where the iterate holds light the raw cannot explain, red where it lost light the raw has
RESIDUAL_COLORMAP = "bwr"


def check_iterates(model, img, axes, voxel_size, iterates):
    """The consistency report of ``iterates`` and their residual maps, or why there is none.

    Parameters
    ----------
    model : DeepContrast
        The model (its training degradation is the forward model of the check).
    img : numpy.ndarray
        The raw layer's data.
    axes : str
        Its axes.
    voxel_size : tuple of float
        um per pixel per spatial axis of ``axes``.
    iterates : list of numpy.ndarray
        Iterations 1..n.

    Returns
    -------
    types.SimpleNamespace
        ``report`` (:class:`~deepcontrast.consistency.ConsistencyReport` or None), ``maps``
        (residual map per iteration, each the layer's shape; empty without a report),
        ``source`` of the forward model and ``note`` (why there is no report, else '').
    """
    extra = [a for a in axes if a not in "ZYX"]
    if extra:
        return SimpleNamespace(report=None, maps=[], source=None,
                               note=f"no consistency check: it compares images of Z, Y, X only, and the layer's axes "
                                    f"{axes!r} also hold {''.join(extra)!r}")
    from ..consistency import check_consistency

    degradation, source = model._adaptive_degradation(None)
    try:
        report = check_consistency(img, iterates, axes, degradation, voxel_size=voxel_size)
    except ValueError as e:
        return SimpleNamespace(report=None, maps=[], source=source, note=f"no consistency check: {e}")
    maps = [report.residual_map(k) for k in range(1, report.n_iter + 1)]
    return SimpleNamespace(report=report, maps=maps, source=source, note="")


def residual_of(check, k, shape):
    """Residual map of iteration ``k`` (0, the raw, explains itself: zeros)."""
    return np.zeros(shape, np.float32) if k == 0 else check.maps[k - 1]
