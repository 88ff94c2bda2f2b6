"""The per-plane blend of iterates (numpy only) and the rule that chooses them (re-exported).

See :mod:`deepcontrast.models.adaptive` for the rule and why; :func:`choose_iterations` (from
:mod:`deepcontrast.consistency.choice`, where ``metrics`` can use it too) applies it to a
consistency report's arrays, :func:`blend_iterates` makes the output (also per block in
:meth:`~deepcontrast.models.blockwise.BlockwiseMixin.predict_blockwise` with ``chosen``).
"""
import numpy as np

from ..consistency.choice import CHI2_TOL, DEPTH_MARGIN, RULE, SMOOTH, choose_iterations

__all__ = ["choose_iterations", "blend_iterates", "CHI2_TOL", "DEPTH_MARGIN", "SMOOTH", "RULE"]


def blend_iterates(raw, iterates, chosen, axes):
    """Each plane the weighted mean of its two neighbouring iterates: ``(1 - t) * it[k] + t * it[k + 1]``.

    Parameters
    ----------
    raw : numpy.ndarray
        The raw image (iterate 0).
    iterates : sequence of numpy.ndarray
        Iterates 1..n, each of the raw's shape.
    chosen : float or array_like
        Iteration per plane in ``[0, n]`` (``k + t``); one number, or one per plane along Z.
    axes : str
        Axes of ``raw`` (Z is the plane axis).

    Returns
    -------
    numpy.ndarray
        float32, the raw's shape.

    Raises
    ------
    ValueError
        ``chosen`` out of ``[0, n]``, NaN, or not one per plane.
    """
    its = [np.asarray(raw, np.float32)] + [np.asarray(y, np.float32) for y in iterates]
    n = len(its) - 1
    ch = np.asarray(chosen, float)
    if ch.ndim == 0 or "Z" not in axes:
        if ch.size != 1:
            raise ValueError(f"chosen holds {ch.size} values but axes {axes!r} have no Z; give one number")
        ch = ch.reshape(1)
        shape = (1,)
    else:
        nz = its[0].shape[axes.index("Z")]
        if ch.shape != (nz,):
            raise ValueError(f"chosen has shape {ch.shape} but the image has {nz} planes along Z; give one "
                             "iteration per plane (np.interp a choice made on a subsampled stack)")
        shape = [1] * its[0].ndim
        shape[axes.index("Z")] = nz
    if not np.all(np.isfinite(ch)):
        raise ValueError("chosen holds NaN/Inf; give a finite iteration per plane")
    if ch.min() < 0 or ch.max() > n:
        raise ValueError(f"chosen must lie in [0, {n}] (0 = the raw, {n} = the last iterate given), got values "
                         f"{ch.min():g}..{ch.max():g}")
    k = np.minimum(np.floor(ch).astype(int), max(n - 1, 0))
    t = (ch - k).astype(np.float32)
    out = np.zeros(its[0].shape, np.float32)
    for j in np.unique(np.concatenate([k, np.minimum(k + 1, n)])):
        w = np.where(k == j, 1 - t, 0) + np.where(k + 1 == j, t, 0)
        if np.any(w):
            out += w.astype(np.float32).reshape(shape) * its[j]
    return out
