"""Blur, haze and out-of-focus light from how each slice's power spectrum changes with depth.

Blur, scattering (haze) and out-of-focus light
    Per slice, the radial power spectrum of the structure (Hann-windowed, minus the white-noise
    power predicted by the noise fit), divided by the squared slice mean: the *contrast
    spectrum* ``K_k(f)``. The shallowest slices are the reference. The model predicts
    ``K_k(f) / K_ref(f) = |T(z_k, f)|^2 / |T(z_ref, f)|^2 / ((1 + w(z_k)) / (1 + w(z_ref)))^2``
    with ``T = b G(s_b) + (1 - b) G(s_h) + w G(s_o)`` the model's transfer from the surface
    (ballistic PSF, scattered halo, out-of-focus light with weight ``w``; the squared slice
    mean grows with ``1 + w``). Each branch is a 3D Gaussian: laterally its transfer function;
    axially it mixes neighbouring slices, which lowers a slice's power by how much the
    structure decorrelates between slices at that frequency. That decorrelation is measured
    from the stack itself (:func:`~deepcontrast.calibration.depth.axial_correlation`), so
    thin structures losing contrast to the axial blur are not read as haze or out-of-focus
    light. ``blur_rate``, ``scattering_length`` and ``out_of_focus`` are fitted on a grid to
    ``log K`` over slices and frequencies where the structure is above the noise, with the
    halo width at its default. Two models are compared: *point-scanning* (``out_of_focus =
    0``) and *widefield* (``out_of_focus`` free); widefield is chosen only if it lowers the
    residual sum of squares by more than 30% with ``out_of_focus > 0.05``, or when the caller
    says so (``microscope=``). Uncertainties are the grid ranges whose profile residual stays
    within ``1 + 4 / n_slices`` of the minimum (about two standard errors); a parameter whose
    range touches both ends of the grid is not identified and keeps its default.

    The halo width (``haze_sigma``, ``haze_rate``) is then profiled on a second grid, with
    ``blur_rate`` and ``scattering_length`` free and the mode kept: same residual, same rule
    for its interval. In widefield stacks it keeps its default: a wide halo and out-of-focus
    light both lower the contrast at all but the lowest frequencies and cannot be told apart.

Limitations (measured on stacks rendered by the forward model itself)
    On ``synthetic_tissue`` renders of 48x192x192 voxels (2 x 0.5 x 0.5 um, 50 photons, seeds
    0-9, ``benchmarks/bench_widefield.py --no-train``), point-scanning stacks give
    ``blur_rate`` 0.03 in 10/10 (true 0.03), ``scattering_length`` 105 um [75, 205] (true
    100), the halo at its true width, attenuation within 11% (median), and 1/10 is called
    widefield. The mode test is weak the other way: stacks with ``out_of_focus`` 0.5, 1, 2 are
    called widefield in 4/10, 5/10, 7/10 cases, and even when the mode is given the fitted
    ``out_of_focus`` spreads over its whole grid. Within this model the out-of-focus light is
    a wide 3D Gaussian that acts in a slice almost as a pedestal; its weight shows only in how
    the contrast falls with depth, ``(1 + w(z_ref)) / (1 + w(z))``, which changes little
    between weights 0.5 and 3 and trades against the scattering length. If your microscope is
    widefield, spinning-disk or light-sheet, say so (``microscope='widefield'``) and, if you
    know it, set ``out_of_focus`` yourself (``deg.replace(out_of_focus=...)``); the
    attenuation is then fitted with its out-of-focus light divided out.
"""
import warnings

import numpy as np

__all__ = ["fit_spectral"]

_LS_GRID = np.concatenate([np.geomspace(10.0, 3000.0, 18), [np.inf]])
_BLUR_GRID = np.linspace(0.0, 0.15, 16)
_OOF_GRID = np.concatenate([[0.0], np.geomspace(0.02, 3.0, 14)])
_HAZE_SIGMA_GRID = np.array([0.5, 1.0, 2.0, 3.0, 4.5, 7.0, 10.0, 15.0, 25.0])
_HAZE_RATE_GRID = np.array([0.0, 0.02, 0.035, 0.05, 0.075, 0.1, 0.15, 0.25])
_PARAMETERS = ("blur_rate", "scattering_length", "out_of_focus", "haze_sigma", "haze_rate")


class _AxialFactor:
    """``A(var)``: how much a Gaussian of variance ``var`` (um^2) along Z keeps of a slice's power.

    ``A = sum_lag rho(|lag|) h(lag)``, ``h`` the sampled, normalized Gaussian of that variance
    at the slice spacing ``vz`` (the power of a blurred slice is the structure's correlation
    between slices weighted by the kernel's autocorrelation; two Gaussians of variances ``v1``,
    ``v2`` give ``var = v1 + v2``). ``rho`` is the measured axial correlation per point
    (:func:`~deepcontrast.calibration.depth.axial_correlation`), 0 beyond its last lag. Tabulated
    on a log grid of ``var`` once per correlation curve (``index`` maps points to curves: every
    slice of a stack shares its bins' curves) and interpolated, so grid fits stay cheap.
    """

    _LOG_VAR = np.linspace(np.log(1e-3), np.log(5e3), 161)

    def __init__(self, rho, vz, index=None):
        rho = np.asarray(rho, float)  # (n_curves, n_lags + 1): one correlation curve per stack and bin
        s2 = np.exp(self._LOG_VAR)[None, :] / np.asarray(vz, float)[:, None] ** 2  # slices^2
        lags = np.arange(1, rho.shape[1])
        e = np.exp(-0.5 * lags**2 / s2[..., None])  # (n_curves, n_var, n_lags)
        table = (1 + 2 * np.sum(e * rho[:, None, 1:], -1)) / _gauss_sum(s2)
        self.table = table if index is None else table[index]  # per point: its curve's row
        self._rows = np.arange(len(self.table))

    def __call__(self, var):
        x = (np.log(np.maximum(var, 1e-300)) - self._LOG_VAR[0]) / (self._LOG_VAR[1] - self._LOG_VAR[0])
        x = np.clip(x, 0, len(self._LOG_VAR) - 1 - 1e-9)
        i = x.astype(int)
        t = x - i
        return self.table[self._rows, i] * (1 - t) + self.table[self._rows, i + 1] * t


def _gauss_sum(s2):
    """``sum_l exp(-l^2 / (2 s2))`` over all integers ``l`` (Poisson summation for wide kernels)."""
    s = np.sqrt(s2)
    lags = np.arange(1, 9)
    direct = 1 + 2 * np.exp(-0.5 * lags**2 / np.minimum(s2, 1.0)[..., None]).sum(-1)
    return np.where(s >= 1, np.sqrt(2 * np.pi) * s, direct)


def _transfer2(freq, z, blur, ls, haze_sigma, haze_rate, oof, axial=None, psf=0.3):
    """Power transfer ``|T(z, f)|^2`` of the model from the surface to depth ``z``.

    ``T = b G(s_b) + (1 - b) G(s_h) + w G(s_o)`` (ballistic, halo and out-of-focus branches
    with the model's depth laws), each a 3D Gaussian: the lateral part is its transfer function
    at ``freq``, the axial part acts through ``axial`` (an :class:`_AxialFactor`; None ignores
    it). Arrays broadcast, points on the last axis.
    """
    b = np.exp(-z / ls)
    branches = [(b, psf**2 + (blur * z) ** 2), (1 - b, (haze_sigma + haze_rate * z) ** 2)]
    if np.any(oof):
        branches.append((oof * (1 + z / ls), 4 * (haze_sigma + haze_rate * z) ** 2))
    total = 0.0
    for i, (ci, vi) in enumerate(branches):
        for j, (cj, vj) in enumerate(branches[i:], start=i):
            term = (1 if i == j else 2) * ci * cj * np.exp(-2 * np.pi**2 * (vi + vj) * freq**2)
            total = total + (term if axial is None else term * axial(vi + vj))
    return total


def axial_factor(rho, vz):
    """The axial factor of points with measured axial correlation ``rho`` (n_points, n_lags + 1)."""
    rho = np.asarray(rho, float)
    return _AxialFactor(rho, np.full(len(rho), float(vz)))


def model_transfer(freq, z, deg, axial=None):
    """``|T(z, f)|^2`` of a :class:`~deepcontrast.degradation.DeepTissueDegradation` (see :func:`_transfer2`)."""
    ls = np.inf if deg.scattering_length is None else deg.scattering_length
    return _transfer2(freq, z, deg.blur_rate, ls, deg.haze_sigma, deg.haze_rate, deg.out_of_focus, axial,
                      deg.psf_sigma)


#: spectral points whose structure power is below this fraction of the squared mean (white noise
#: of 0.3% rms contrast; a camera's noise lies above it) are not fitted. Only noise-free data
#: reach them: on a noise-free ``synthetic_tissue`` render (true blur_rate 0.05) the far tail of
#: the spectra read blur_rate 0.01 and a scattering length of 10 um (0.04 with 1e-7 as the floor)
MIN_CONTRAST_POWER = 1e-5


def _collect_rows(stats, depths, n_ref):
    """Observed log contrast spectra vs the shallowest slices.

    Returns (lk, lref, f, zr, z, axial, n_slices) with one entry per (slice, frequency) point,
    ``axial`` the :class:`_AxialFactor` of the points (from each stack's measured axial
    correlation; None when the stats carry none), or None when too few slices qualify.
    """
    rows, curves = [], []  # rows: (logK_obs, logK_ref, freq, z_ref, z, curve index); curves: (rho, vz)
    n_curves = 0
    for st, z in zip(stats, depths):
        n_z = len(z)
        if n_z < 4:
            continue
        order = np.argsort(z)
        m, S, N = st["mean"][order], st["signal"][order], st["noise"][order]
        zz = np.asarray(z, float)[order]
        nr = n_ref or max(2, n_z // 8)
        sig = st["significant"][order] if "significant" in st else True  # depth-map tiles: few in a bin
        with np.errstate(divide="ignore", invalid="ignore"):  # rows without light (m = 0) are masked out
            K = np.where((S > N) & (S > MIN_CONTRAST_POWER * m[:, None] ** 2) & sig & (m > 0)[:, None],
                         S / m[:, None] ** 2, np.nan)
        ref_ok = np.all(np.isfinite(K[:nr]), 0)
        if not ref_ok.any():
            continue
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are excluded just below
            Kref = np.exp(np.nanmean(np.log(K[:nr]), 0))
        zref = float(zz[:nr].mean())
        curves.append((st.get("rho"), float(np.median(np.diff(zz)))))
        for k in range(nr, n_z):
            sel = np.isfinite(K[k]) & ref_ok
            if sel.sum() >= 3 and zz[k] > zref:
                rows.append((np.log(K[k, sel]), np.log(Kref[sel]), st["freq"][sel], zref, zz[k],
                             n_curves + np.flatnonzero(sel)))
        n_curves += len(st["freq"])
    if len(rows) < 3:
        return None
    cat = [np.concatenate([r[i] for r in rows]) for i in range(3)]
    zr = np.concatenate([np.full(len(r[0]), r[3]) for r in rows])
    z = np.concatenate([np.full(len(r[0]), r[4]) for r in rows])
    axial = None
    if all(rho is not None for rho, _ in curves):
        n_lags = min(rho.shape[1] for rho, _ in curves)
        axial = _AxialFactor(np.concatenate([rho[:, :n_lags] for rho, _ in curves]),
                             np.concatenate([np.full(len(rho), vz) for rho, vz in curves]),
                             np.concatenate([r[5] for r in rows]))
    return (*cat, zr, z, axial, len(rows))


def _rss(rows, oof, blur, ls, haze_sigma, haze_rate, psf=0.3):
    """Residual sum of squares of log K, broadcast over parameter grids (points on the last axis)."""
    lk, lref, f, zr, z, axial, _ = rows
    t2 = _transfer2(f, z, blur, ls, haze_sigma, haze_rate, oof, axial, psf)
    t2r = _transfer2(f, zr, blur, ls, haze_sigma, haze_rate, oof, axial, psf)
    wz, wr = oof * (1 + z / ls), oof * (1 + zr / ls)
    pred = lref + np.log(np.maximum(t2, 1e-300) / np.maximum(t2r, 1e-300)) - 2 * np.log((1 + wz) / (1 + wr))
    return np.sum((lk - pred) ** 2, axis=-1)


def _profile(cube, axis, grid, best, tol, name, default):
    """Value and interval of one parameter from the rss cube (min over the other axes)."""
    prof = np.moveaxis(cube, axis, 0).reshape(len(grid), -1).min(1)
    ok = np.flatnonzero(prof <= best * tol)
    val = float(grid[int(np.argmin(prof))])
    lo, hi = float(grid[ok.min()]), float(grid[ok.max()])
    identified = not (ok.min() == 0 and ok.max() == len(grid) - 1)
    res = {"value": val if identified else default, "interval": [lo, hi], "estimated": bool(identified),
           "best_on_grid": val}
    if not identified:
        res["reason"] = f"{name} not identified by the data (any value in [{lo:g}, {hi:g}] fits)"
    return res


def _mode_fit(rows, defaults, microscope="auto"):
    """Grid (out_of_focus, blur_rate, scattering_length) at the default halo; the mode test
    (skipped when ``microscope`` names the mode)."""
    B, L = _BLUR_GRID[:, None, None], _LS_GRID[None, :, None]
    O = _OOF_GRID[:, None, None, None]
    rss = _rss(rows, O, B[None], L[None], defaults.haze_sigma, defaults.haze_rate, defaults.psf_sigma)  # (oof, blur, ls)
    rss_p, rss_w = rss[0], rss[1:]
    ip = np.unravel_index(np.argmin(rss_p), rss_p.shape)
    iw = np.unravel_index(np.argmin(rss_w), rss_w.shape)
    best_p, best_w = float(rss_p[ip]), float(rss_w[iw])
    if microscope == "auto":
        widefield = best_w < 0.7 * best_p and float(_OOF_GRID[1:][iw[0]]) > 0.05
    else:
        widefield = microscope == "widefield"
    return rss, widefield, {"point-scanning": best_p, "widefield": best_w}


def _haze_fit(rows, oof, tol, defaults):
    """Profile the halo width on its grid, blur_rate and scattering_length free, out_of_focus fixed."""
    B = _BLUR_GRID[:, None, None, None]
    L = _LS_GRID[None, :, None, None]
    HR = _HAZE_RATE_GRID[None, None, :, None]
    # one halo width at a time: the full cube of points would take hundreds of MB for big stacks
    cube = np.stack([_rss(rows, oof, B, L, hs, HR, defaults.psf_sigma) for hs in _HAZE_SIGMA_GRID], 2)
    best = float(cube.min())
    return {"haze_sigma": _profile(cube, 2, _HAZE_SIGMA_GRID, best, tol, "haze_sigma", defaults.haze_sigma),
            "haze_rate": _profile(cube, 3, _HAZE_RATE_GRID, best, tol, "haze_rate", defaults.haze_rate)}


def fit_spectral(stats, depths, defaults, *, n_ref=None, microscope="auto"):
    """Fit blur_rate, scattering_length, out_of_focus and the halo width to per-slice contrast spectra.

    Parameters
    ----------
    stats : list of dict
        :func:`~deepcontrast.calibration.depth.slice_stats` of each stack.
    depths : list of numpy.ndarray
        Depth (um) of each slice of each stack.
    defaults : DeepTissueDegradation
        Supplies the fallbacks (and the halo width for the mode test).
    n_ref : int or None
        Number of shallowest slices forming the reference (default: n_z // 8, at least 2).
    microscope : {'auto', 'point-scanning', 'widefield'}
        'auto' chooses the model by the mode test; the others fit that model (out_of_focus
        0, or fitted).

    Returns
    -------
    dict
        Per parameter (``blur_rate``, ``scattering_length``, ``out_of_focus``, ``haze_sigma``,
        ``haze_rate``) ``{'value', 'interval', 'estimated', 'reason'}``; the ``mode``
        ('point-scanning', 'widefield' or 'unknown') and the residuals (``rss``) of both models.
    """
    rows = _collect_rows(stats, depths, n_ref)
    if rows is None:
        why = "too few slices with structure above the noise to compare spectra with depth"
        return dict({k: {"value": getattr(defaults, k), "interval": None, "estimated": False, "reason": why}
                     for k in _PARAMETERS}, mode="unknown", reason=why)
    rss, widefield, best_rss = _mode_fit(rows, defaults, microscope)
    cube = rss if widefield else rss[:1]
    best, tol = float(cube.min()), 1 + 4.0 / rows[-1]
    out = {"mode": "widefield" if widefield else "point-scanning", "rss": best_rss, "reason": None,
           "mode_given": microscope != "auto"}
    out["blur_rate"] = _profile(cube, 1, _BLUR_GRID, best, tol, "blur_rate", defaults.blur_rate)
    sl = _profile(cube, 2, _LS_GRID, best, tol, "scattering_length", defaults.scattering_length)
    if sl["estimated"] and np.isinf(sl["value"]):
        sl["value"] = None  # no haze detected: the model's None
    out["scattering_length"] = sl
    if widefield:
        out["out_of_focus"] = _profile(cube, 0, _OOF_GRID, best, tol, "out_of_focus", defaults.out_of_focus)
        why = "not separable from out-of-focus light (widefield stack): default kept"
        out.update({k: {"value": getattr(defaults, k), "interval": None, "estimated": False, "reason": why}
                    for k in ("haze_sigma", "haze_rate")})
    else:
        out["out_of_focus"] = {"value": 0.0, "interval": None, "estimated": True,
                               "reason": "point-scanning model fits as well (no out-of-focus term)"}
        out.update(_haze_fit(rows, 0.0, tol, defaults) if sl["value"] is not None else {})
    for k in _PARAMETERS:
        v = out.setdefault(k, {"value": getattr(defaults, k), "interval": None, "estimated": False,
                               "reason": "no halo detected (scattering_length None): its width is moot"})
        if v.get("interval") is not None:
            v["interval"] = [None if np.isinf(x) else x for x in v["interval"]]
        if isinstance(v.get("best_on_grid"), float) and np.isinf(v["best_on_grid"]):
            v["best_on_grid"] = None
    return out
