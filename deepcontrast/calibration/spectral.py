"""Blur, haze and out-of-focus light from how each slice's power spectrum changes with depth.

Blur, scattering (haze) and out-of-focus light
    Per slice, the radial power spectrum of the structure (Hann-windowed, minus the white-noise
    power predicted by the noise fit), divided by the squared slice mean: the *contrast
    spectrum* ``K_k(f)``. The shallowest slices are the reference. Going deeper by ``d`` the
    model predicts ``K_k(f) = K_ref(f) * |T(f)|**2 / ((1 + w(z_k)) / (1 + w(z_ref)))**2`` with
    the increment transfer ``T = r_b G(s_inc) + (1 - r_b) G(s_h)`` (ballistic blur growth and
    scattered halo, exactly the increment :class:`DeepTissueDegradation` applies) and ``w`` the
    out-of-focus weight (out-of-focus light from other planes adds to the mean but hardly to
    the in-plane structure). ``blur_rate``, ``scattering_length`` and ``out_of_focus`` are
    fitted on a grid to ``log K`` over slices and frequencies where the structure is above the
    noise, with the halo width at its default. Two models are compared: *point-scanning*
    (``out_of_focus = 0``) and *widefield* (``out_of_focus`` free); widefield is chosen only if
    it lowers the residual sum of squares by more than 30% with ``out_of_focus > 0.05``.
    Uncertainties are the grid ranges whose profile residual stays within ``1 + 4 / n_slices``
    of the minimum (about two standard errors); a parameter whose range touches both ends of
    the grid is not identified and keeps its default.

    The halo width (``haze_sigma``, ``haze_rate``) is then profiled on a second grid, with
    ``blur_rate`` and ``scattering_length`` free and the mode kept: same residual, same rule
    for its interval. In widefield stacks it keeps its default: a wide halo and out-of-focus
    light both lower the contrast at all but the lowest frequencies and cannot be told apart.

Limitations (measured on stacks rendered by the forward model itself)
    The mode test is weak, and cannot be made strong within this model: the out-of-focus light
    is a wide 3D Gaussian, so in a slice it acts almost as a pedestal, and so does a wide
    scattered halo; the two differ only in how their weights grow with depth (``w(z)`` vs
    ``1 - b(z)``) and at the lowest frequencies of the field of view. The test therefore
    assumes the halo width (the defaults' ``haze_sigma``, ``haze_rate``): a halo wider or
    growing faster than that reads as out-of-focus light (on exact model spectra, a halo of
    4.5 um + 0.05 z or 2 um + 0.1 z was called widefield). On ``synthetic_tissue`` renders of
    48x192x192 voxels (2 x 0.5 x 0.5 um, 50 photons, seeds 0-9) stacks were called widefield
    in 2/10, 6/10, 9/10, 8/10 cases for ``out_of_focus`` 0, 0.5, 1, 2, and ``out_of_focus``
    itself came out within 30% only now and then (``benchmarks/bench_widefield.py``). On
    32x128x128 stacks the fields of view are too small to tell. If you know your microscope is
    widefield, set ``out_of_focus`` yourself (``deg.replace(out_of_focus=...)``); the
    attenuation is then fitted with its out-of-focus light divided out. ``blur_rate`` and
    ``scattering_length`` come from a lateral-only transfer (the model's axial blur is
    ignored), so they are approximate: on 32x128x128 stacks ``blur_rate`` 0 and 0.06 were
    recovered as 0.0-0.01 and 0.04-0.05, ``scattering_length`` 100 um as 50-150 um. The halo
    width comes with wide intervals (e.g. 3 um [0.5, 10] for a true 3 um).
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


def _transfer2(freq, z_ref, z, blur, ls, haze_sigma, haze_rate):
    """|T|^2 of the increment from z_ref to z: arrays broadcast as (blur, ls, slice, freq)."""
    d = np.maximum(z - z_ref, 0.0)
    s_inc2 = blur**2 * (2 * z_ref * d + d * d)
    rb = np.exp(-d / ls)
    s_h = haze_sigma + haze_rate * z
    g = np.exp(-2 * np.pi**2 * s_inc2 * freq**2)
    h = np.exp(-2 * np.pi**2 * s_h**2 * freq**2)
    return (rb * g + (1 - rb) * h) ** 2


def _collect_rows(stats, depths, n_ref):
    """Observed log contrast spectra vs the shallowest slices: (lk, lref, f, zr, z, n_slices) or None."""
    rows = []  # (logK_obs, logK_ref, freq, z_ref, z)
    for st, z in zip(stats, depths):
        n_z = len(z)
        if n_z < 4:
            continue
        order = np.argsort(z)
        m, S, N = st["mean"][order], st["signal"][order], st["noise"][order]
        zz = np.asarray(z, float)[order]
        nr = n_ref or max(2, n_z // 8)
        K = np.where((S > N) & (m > 0)[:, None], S / np.maximum(m[:, None], 1e-300) ** 2, np.nan)
        ref_ok = np.all(np.isfinite(K[:nr]), 0)
        if not ref_ok.any():
            continue
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns are excluded just below
            Kref = np.exp(np.nanmean(np.log(K[:nr]), 0))
        zref = float(zz[:nr].mean())
        for k in range(nr, n_z):
            sel = np.isfinite(K[k]) & ref_ok
            if sel.sum() >= 3 and zz[k] > zref:
                rows.append((np.log(K[k, sel]), np.log(Kref[sel]), st["freq"][sel], zref, zz[k]))
    if len(rows) < 3:
        return None
    cat = [np.concatenate([r[i] for r in rows]) for i in range(3)]
    zr = np.concatenate([np.full(len(r[0]), r[3]) for r in rows])
    z = np.concatenate([np.full(len(r[0]), r[4]) for r in rows])
    return (*cat, zr, z, len(rows))


def _rss(rows, oof, blur, ls, haze_sigma, haze_rate):
    """Residual sum of squares of log K, broadcast over parameter grids (points on the last axis)."""
    lk, lref, f, zr, z, _ = rows
    t2 = _transfer2(f, zr, z, blur, ls, haze_sigma, haze_rate)
    wz, wr = oof * (1 + z / ls), oof * (1 + zr / ls)
    pred = lref + np.log(np.maximum(t2, 1e-300)) - 2 * np.log((1 + wz) / (1 + wr))
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


def _mode_fit(rows, defaults):
    """Grid (out_of_focus, blur_rate, scattering_length) at the default halo; the mode test."""
    B, L = _BLUR_GRID[:, None, None], _LS_GRID[None, :, None]
    O = _OOF_GRID[:, None, None, None]
    rss = _rss(rows, O, B[None], L[None], defaults.haze_sigma, defaults.haze_rate)  # (oof, blur, ls)
    rss_p, rss_w = rss[0], rss[1:]
    ip = np.unravel_index(np.argmin(rss_p), rss_p.shape)
    iw = np.unravel_index(np.argmin(rss_w), rss_w.shape)
    best_p, best_w = float(rss_p[ip]), float(rss_w[iw])
    widefield = best_w < 0.7 * best_p and float(_OOF_GRID[1:][iw[0]]) > 0.05
    return rss, widefield, {"point-scanning": best_p, "widefield": best_w}


def _haze_fit(rows, oof, tol, defaults):
    """Profile the halo width on its grid, blur_rate and scattering_length free, out_of_focus fixed."""
    B = _BLUR_GRID[:, None, None, None, None]
    L = _LS_GRID[None, :, None, None, None]
    HS = _HAZE_SIGMA_GRID[None, None, :, None, None]
    HR = _HAZE_RATE_GRID[None, None, None, :, None]
    cube = _rss(rows, oof, B, L, HS, HR)  # (blur, ls, haze_sigma, haze_rate)
    best = float(cube.min())
    return {"haze_sigma": _profile(cube, 2, _HAZE_SIGMA_GRID, best, tol, "haze_sigma", defaults.haze_sigma),
            "haze_rate": _profile(cube, 3, _HAZE_RATE_GRID, best, tol, "haze_rate", defaults.haze_rate)}


def fit_spectral(stats, depths, defaults, *, n_ref=None):
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
    rss, widefield, best_rss = _mode_fit(rows, defaults)
    cube = rss if widefield else rss[:1]
    best, tol = float(cube.min()), 1 + 4.0 / rows[-1]
    out = {"mode": "widefield" if widefield else "point-scanning", "rss": best_rss, "reason": None}
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
