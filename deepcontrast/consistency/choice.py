"""The rule of depth-adaptive restoration: per plane, the most restoration the raw data support (numpy/scipy only).

:func:`choose_iterations` turns a :class:`~deepcontrast.consistency.ConsistencyReport`'s
``restored_depth`` and ``chi2`` into a per-plane, fractional iteration;
:meth:`DeepContrast.predict_adaptive <deepcontrast.models.adaptive.AdaptiveMixin.predict_adaptive>`
blends iterates with it and :func:`deepcontrast.metrics.suggest_n_iter` (its data-consistency
rule) reads one number for a whole stack from it. See :mod:`deepcontrast.models.adaptive` for
the rule and why. It lives here, beside the check, so that ``metrics`` can use it without
importing ``models``; :mod:`deepcontrast.models.choice` re-exports it.
"""
import numpy as np
from scipy import ndimage as ndi

__all__ = ["choose_iterations", "no_restoration", "CHI2_TOL", "DEPTH_MARGIN", "SMOOTH", "RULE", "NO_RESTORATION"]

#: restored depth (um) below which an iterate counts as "no restoration"
NO_RESTORATION = 1.0

#: an iterate may have a chi2 up to (1 + CHI2_TOL) times iteration 1's (per plane)
CHI2_TOL = 0.2
#: no plane restored deeper than its own depth plus this margin (um); 0: not beyond the surface
DEPTH_MARGIN = 0.0
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
        ... and ``restored_depth[k] <= plane_depth + depth_margin`` (um, default 0).
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


def no_restoration(restored_depth, *, threshold=NO_RESTORATION):
    """True when no iterate restored any depth: every iterate's median restored depth is below ``threshold`` um.

    Parameters
    ----------
    restored_depth : array_like
        ``(n_iter, Z)`` micrometres, as :class:`~deepcontrast.consistency.ConsistencyReport` holds it.
    threshold : float
        Median restored depth (um) under which an iterate restored nothing (default 1).

    Returns
    -------
    bool

    Examples
    --------
    >>> no_restoration([[0.2, 0.0], [0.5, 0.3]]), no_restoration([[0.2, 0.0], [8.0, 12.0]])
    (True, False)
    """
    rd = np.asarray(restored_depth, float)
    if rd.ndim != 2 or rd.size == 0:
        raise ValueError(f"restored_depth must be (n_iter, Z) with at least one value, got shape {rd.shape}")
    return bool(np.all(np.median(rd, axis=1) < threshold))
