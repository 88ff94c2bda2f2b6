"""The rule of depth-adaptive restoration and the per-plane blend of iterates (numpy/scipy only).

See :mod:`deepcontrast.models.adaptive` for the rule and why; :func:`choose_iterations` applies it
to a consistency report's arrays, :func:`blend_iterates` makes the output (also per block in
:meth:`~deepcontrast.models.blockwise.BlockwiseMixin.predict_blockwise` with ``chosen``).
"""
import numpy as np
from scipy import ndimage as ndi

__all__ = ["choose_iterations", "blend_iterates", "CHI2_TOL", "DEPTH_MARGIN", "SMOOTH", "RULE"]

#: an iterate may have a chi2 up to (1 + CHI2_TOL) times iteration 1's (per plane)
CHI2_TOL = 0.2
#: no plane restored deeper than its own depth plus this margin (um)
DEPTH_MARGIN = 10.0
#: half-width (planes) of the smoothing of the choice along Z
SMOOTH = 3

RULE = ("per plane, the most iterations k (walking 1, 2, ...; fractional between neighbours, iterate 0 = the raw) "
        "with chi2[k] <= (1 + chi2_tol) * chi2[1] and restored_depth[k] <= plane depth + depth_margin; then "
        "smoothed along Z (median of 3, minimum over 2*smooth+1 planes, Gaussian sigma smooth/2 truncated at "
        "smooth planes), never above the median-filtered per-plane choice")


def choose_iterations(restored_depth, chi2, plane_depth, *, chi2_tol=CHI2_TOL, depth_margin=DEPTH_MARGIN,
                      smooth=SMOOTH):
    """Per plane, the most restoration the raw data support (the rule of :mod:`deepcontrast.models.adaptive`).

    Parameters
    ----------
    restored_depth, chi2 : array_like
        ``(n_iter, Z)``, as :class:`~deepcontrast.consistency.ConsistencyReport` holds them
        (row ``k - 1`` is iteration ``k``).
    plane_depth : array_like
        ``(Z,)`` depth (um) of each plane.
    chi2_tol : float
        Iterate ``k`` passes when ``chi2[k] <= (1 + chi2_tol) * chi2[1]`` (default 0.2).
    depth_margin : float
        ... and ``restored_depth[k] <= plane_depth + depth_margin`` (um, default 10).
    smooth : int
        Half-width (planes) of the smoothing along Z; 0 keeps the per-plane choice.

    Returns
    -------
    chosen : numpy.ndarray
        ``(Z,)`` smoothed choice in ``[0, n_iter]`` (0 = the raw), never above ``per_plane``
        filtered by a 3-plane median.
    per_plane : numpy.ndarray
        ``(Z,)`` the choice of each plane on its own.

    Raises
    ------
    ValueError
        Shapes that do not agree, NaN in ``plane_depth``, negative ``chi2_tol``,
        ``depth_margin`` or ``smooth``.

    Examples
    --------
    >>> chosen, _ = choose_iterations([[5, 5], [15, 30]], [[1, 1], [1, 1]], [0, 40], smooth=0)
    >>> chosen.tolist()
    [1.5, 2.0]
    """
    rd, c2 = np.asarray(restored_depth, float), np.asarray(chi2, float)
    z = np.asarray(plane_depth, float)
    if rd.ndim != 2 or rd.shape != c2.shape or z.shape != rd.shape[1:]:
        raise ValueError(f"restored_depth {rd.shape} and chi2 {c2.shape} must both be (n_iter, Z) and plane_depth "
                         f"{z.shape} (Z,); pass the arrays of one ConsistencyReport")
    if not np.all(np.isfinite(z)):
        raise ValueError("plane_depth holds NaN/Inf; give every plane's depth in micrometres")
    for name, v in (("chi2_tol", chi2_tol), ("depth_margin", depth_margin), ("smooth", smooth)):
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    if int(smooth) != smooth:
        raise ValueError(f"smooth must be a whole number of planes, got {smooth!r}")
    limit_d = z + depth_margin
    limit_c = (1.0 + chi2_tol) * c2[0]
    # iterate 0 is the raw: restored depth 0, and the chi2 condition does not apply to it
    d = np.concatenate([np.zeros((1, len(z))), rd])
    c = np.concatenate([c2[:1], c2])
    per_plane = np.empty(len(z))
    for j in range(len(z)):
        per_plane[j] = _walk(d[:, j], c[:, j], limit_d[j], limit_c[j])
    return _smooth(per_plane, int(smooth)), per_plane


def _walk(d, c, limit_d, limit_c):
    """Fractional index of the most restoration along one plane's iterates (0 = raw) within both limits."""
    for k in range(len(d) - 1):
        ok_d, ok_c = d[k + 1] <= limit_d, c[k + 1] <= limit_c
        if ok_d and ok_c:
            continue
        t = 1.0
        for val, lim, ok in ((d, limit_d, ok_d), (c, limit_c, ok_c)):
            if not ok:  # also NaN: a quantity that is not finite stops here
                step = val[k + 1] - val[k]
                frac = (lim - val[k]) / step if np.isfinite(step) and step > 0 else 0.0
                t = min(t, float(np.clip(frac, 0.0, 1.0)))
        return k + t
    return float(len(d) - 1)


def _smooth(c, r):
    if r == 0 or len(c) < 2:
        return c.copy()
    m = ndi.median_filter(c, size=3, mode="nearest") if len(c) >= 3 else c
    e = ndi.grey_erosion(m, size=2 * r + 1, mode="nearest")
    return ndi.gaussian_filter1d(e, sigma=r / 2.0, truncate=2.0, mode="nearest")  # support r planes


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
