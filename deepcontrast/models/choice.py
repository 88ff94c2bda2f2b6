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


def check_chosen(chosen, vol, axes, config, n_iter):
    """Check ``chosen`` of blockwise prediction against the volume and the model.

    Parameters
    ----------
    chosen : array_like
        Iterations per plane along Z (fractional, 0 = the raw).
    vol : deepcontrast.data.volume.Volume
        The volume (its ``shape`` and ``name``).
    axes : str
        Axes of ``vol``.
    config : Config
        The model's configuration (channels in and out must agree: the raw is blended in).
    n_iter : int
        Iterations asked for (1, or what ``chosen`` needs).

    Returns
    -------
    (numpy.ndarray, int)
        ``chosen`` as floats, and the iterations it needs.

    Raises
    ------
    ValueError
        Not one finite value >= 0 per plane, a model that changes the number of channels, or an
        ``n_iter`` other than 1 and what ``chosen`` needs.
    """
    ch = np.asarray(chosen, float)
    if "Z" not in axes or ch.shape != (vol.shape[axes.index("Z")],):
        raise ValueError(f"chosen of shape {ch.shape} must hold one iteration per plane along Z of {vol.name} "
                         f"(axes {axes!r}, shape {vol.shape}); np.interp a choice made on fewer planes")
    if not np.all(np.isfinite(ch)) or ch.min() < 0:
        raise ValueError("chosen must hold finite iterations >= 0 (0 = the raw), e.g. report.chosen of "
                         "predict_adaptive")
    if config.n_channel_in != config.n_channel_out:
        raise ValueError(f"chosen blends iterates with the raw, but this model maps {config.n_channel_in} "
                         f"to {config.n_channel_out} channels; predict without chosen")
    needed = max(1, int(np.ceil(ch.max() - 1e-9)))
    if n_iter not in (1, needed):
        raise ValueError(f"chosen needs {needed} iterations but n_iter={n_iter}; leave n_iter at 1 (it follows "
                         f"chosen) or pass n_iter={needed}")
    return ch, needed
