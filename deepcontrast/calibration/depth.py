"""Depth-dependent parameters from the raw stacks: attenuation, blur, haze, out-of-focus light.

Attenuation
    Per slice, the mean intensity above the dark level (``offset`` from the noise fit). The
    forward model's blurs conserve a slice's mean, so ``mean(z) - offset ~ exp(-z / L)`` if
    the density of labelled structure does not change systematically with depth. ``log`` of it
    is fitted by a robust (Huber) straight line, one intercept per stack, common slope; the
    standard error of the slope gives that of ``L``. Too few slices (< 4), a slope within two
    standard errors of zero ('too flat / too shallow to tell'), or intensity *rising* with
    depth (check ``surface``) fall back to the default length (flagged in the report).

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
    noise; ``haze_sigma`` and ``haze_rate`` keep their defaults (the halo width is poorly
    determined when the halo is weak). Two models are compared: *point-scanning*
    (``out_of_focus = 0``) and *widefield* (``out_of_focus`` free); widefield is chosen only if
    it lowers the residual sum of squares by more than 30% with ``out_of_focus > 0.05``.
    Uncertainties are the grid ranges whose profile residual stays within ``1 + 4 / n_slices``
    of the minimum (about two standard errors); a parameter whose range touches both ends of
    the grid is not identified and keeps its default.

Limitations (measured on stacks rendered by the forward model itself)
    The mode test is weak: out-of-focus light and the scattered halo both lower contrast
    mostly at low spatial frequencies, and the fields of view of typical stacks (< ~100 um)
    barely reach the scales (> ~50 um) where only out-of-focus light acts. On 32x128x128
    stacks the widefield model's residual fell from 0.86 of the point-scanning one
    (``out_of_focus = 0``) to 0.77 (``out_of_focus = 1``), short of the 0.7 threshold, so such
    stacks are still called point-scanning. Then the growing out-of-focus light is read as
    slower attenuation (``attenuation_length`` over-estimated, e.g. 147 -> 315 um for
    ``out_of_focus`` 0 -> 1). If you know your microscope is widefield, set ``out_of_focus``
    yourself (``deg.replace(out_of_focus=...)``). ``blur_rate`` and ``scattering_length``
    come from a lateral-only transfer (the model's axial blur is ignored), so they are
    approximate: on such stacks ``blur_rate`` 0 and 0.06 were recovered as 0.0-0.01 and
    0.04-0.05, ``scattering_length`` 100 um as 50-150 um.
"""
import logging
import warnings

import numpy as np
from scipy import fft as sfft

__all__ = ["contrast_profile", "fit_attenuation", "fit_spectral", "slice_stats"]

log = logging.getLogger(__name__)

_LS_GRID = np.concatenate([np.geomspace(10.0, 3000.0, 18), [np.inf]])
_BLUR_GRID = np.linspace(0.0, 0.15, 16)
_OOF_GRID = np.concatenate([[0.0], np.geomspace(0.02, 3.0, 14)])


def slice_stats(stack, vyx, offset, noise, n_bins=24):
    """Per-slice mean above ``offset`` and noise-corrected radial power spectra.

    Parameters
    ----------
    stack : numpy.ndarray
        (n_z, ny, nx) float array of raw data.
    vyx : tuple of float
        Pixel size (um) along Y and X.
    offset : float
        Dark level.
    noise : dict
        Noise fit (``photons``, ``read_noise``) for the white-noise power.
    n_bins : int
        Number of radial frequency bins.

    Returns
    -------
    dict
        ``mean`` (n_z,), ``freq`` (n_bins,) cycles/um, ``signal`` and ``noise`` power (n_z, n_bins).
    """
    n_z, ny, nx = stack.shape
    win = np.outer(np.hanning(ny), np.hanning(nx))
    wnorm = float((win**2).sum())
    fy = sfft.fftfreq(ny) / vyx[0]
    fx = sfft.rfftfreq(nx) / vyx[1]
    fr = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    fmin = 2.0 / min(ny * vyx[0], nx * vyx[1])
    fmax = min(0.5 / vyx[0], 0.5 / vyx[1])
    edges = np.geomspace(fmin, fmax, n_bins + 1)
    idx = np.searchsorted(edges, fr.ravel()) - 1
    ok = (idx >= 0) & (idx < n_bins)
    counts = np.bincount(idx[ok], minlength=n_bins)
    means = stack.reshape(n_z, -1).mean(1) - offset
    power = np.zeros((n_z, n_bins))
    for k in range(n_z):
        sl = (stack[k] - stack[k].mean()) * win
        p = np.abs(sfft.rfft2(sl, workers=-1)) ** 2 / wnorm
        power[k] = np.bincount(idx[ok], weights=p.ravel()[ok], minlength=n_bins) / np.maximum(counts, 1)
    photons, read = noise.get("photons"), noise.get("read_noise") or 0.0
    nvar = np.full(n_z, read**2, float)
    if photons:
        nvar += np.clip(means, 0, None) / photons
    # a real-FFT half-plane counts each frequency once; white noise power per bin is the variance
    freq = np.sqrt(edges[:-1] * edges[1:])
    valid_bins = counts > 0
    return {"mean": means, "freq": freq[valid_bins], "signal": (power - nvar[:, None])[:, valid_bins],
            "noise": np.repeat(nvar[:, None], valid_bins.sum(), 1), "counts": counts[valid_bins], "n_pixels": ny * nx}


def contrast_profile(st, z, deg, n_ref=None):
    """Noise-corrected structure contrast (std / mean) per slice, and the model's prediction.

    The model curve starts from the shallowest slices (as in :func:`fit_spectral`) and applies
    the increment transfer of ``deg`` (blur, haze, out-of-focus) down to each depth.

    Returns
    -------
    (z, data, model) : tuple of 1D numpy.ndarray, sorted by depth
    """
    order = np.argsort(z)
    z = np.asarray(z, float)[order]
    m = st["mean"][order]
    S = np.clip(st["signal"][order], 0, None)
    c = 2.0 * st["counts"] / st["n_pixels"]  # Parseval over the half-plane: variance = sum c * power
    with np.errstate(divide="ignore", invalid="ignore"):
        data = np.sqrt((S * c).sum(1)) / m
    nr = n_ref or max(2, len(z) // 8)
    zref = float(z[:nr].mean())
    Kref = np.mean(S[:nr] / np.maximum(m[:nr, None], 1e-300) ** 2, 0)
    ls = np.inf if deg.scattering_length is None else deg.scattering_length
    t2 = _transfer2(st["freq"][None], zref, z[:, None], deg.blur_rate, ls, deg.haze_sigma, deg.haze_rate)
    w = deg.out_of_focus_weight
    model = np.sqrt((Kref[None] * t2 * c).sum(1)) / ((1 + w(z)) / (1 + w(zref)))
    model = np.where(z >= zref, model, np.nan)
    data = np.where(m > 0, data, np.nan)
    return z, data, model


def _huber_fit(A, y, n_iter=10):
    coef = np.linalg.lstsq(A, y, rcond=None)[0]
    w = np.ones_like(y)
    for _ in range(n_iter):
        r = y - A @ coef
        s = 1.4826 * np.median(np.abs(r - np.median(r))) + 1e-12
        w = np.where(np.abs(r) <= 1.5 * s, 1.0, 1.5 * s / np.maximum(np.abs(r), 1e-300))
        coef = np.linalg.lstsq(A * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
    r = (y - A @ coef) * np.sqrt(w)
    dof = max(len(y) - A.shape[1], 1)
    sigma2 = float(r @ r) / dof
    cov = np.linalg.pinv((A * w[:, None]).T @ A) * sigma2
    return coef, cov


def fit_attenuation(profiles, default, oof_weight=None, offset_range=(0.0, 0.0), n_offsets=21):
    """Fit ``mean(z) - offset = c_i exp(-z / L) (1 + w(z))`` over per-stack depth profiles.

    The offset (relative to the one already subtracted) is profiled over ``offset_range``: the
    value whose log-profile is the straightest wins (a wrong offset bends ``log(mean - b)``).

    Parameters
    ----------
    profiles : list of (z, mean) pairs of 1D arrays
        Depths (um) and slice means above the current offset estimate, one pair per stack.
    default : float or None
        Attenuation length to fall back to.
    oof_weight : callable or None
        ``w(z)`` of an out-of-focus term to divide out (None: point-scanning).
    offset_range : (float, float)
        Range of corrections ``b`` to the offset (added to it) to profile over.
    n_offsets : int
        Number of grid points in ``offset_range``.

    Returns
    -------
    dict
        ``value``, ``se``, ``estimated`` (bool), ``reason``, ``z`` and ``mean`` (used points),
        ``fit`` (model at those depths), ``offset_shift`` (the chosen ``b``).
    """
    lo, hi = offset_range
    best = None
    for b in np.unique(np.linspace(lo, hi, n_offsets if hi > lo else 1)):
        shifted = [(z, np.asarray(m, float) - b) for z, m in profiles]
        res = _fit_attenuation(shifted, default, oof_weight)
        if res.get("rss") is None:
            continue
        if best is None or res["rss"] < best["rss"]:
            best = dict(res, offset_shift=float(b))
    return best if best is not None else dict(_fit_attenuation(profiles, default, oof_weight), offset_shift=0.0)


def _fit_attenuation(profiles, default, oof_weight):
    zs, ys, ids = [], [], []
    for i, (z, m) in enumerate(profiles):
        z, m = np.asarray(z, float), np.asarray(m, float)
        if oof_weight is not None:
            m = m / (1 + oof_weight(z))
        good = m > 0
        zs.append(z[good])
        ys.append(np.log(m[good]))
        ids.append(np.full(good.sum(), i))
    z, y, ids = np.concatenate(zs), np.concatenate(ys), np.concatenate(ids)
    out = {"value": default, "se": None, "estimated": False, "z": z.tolist(), "mean": np.exp(y).tolist(), "fit": None,
           "rss": None}
    if sum(len(p[0]) for p in profiles) > len(z):  # a slice fell below the offset: this offset is too high
        out["reason"] = "slice means at or below the dark level"
        return out
    n_stacks = len(profiles)
    if len(z) < 4 + n_stacks - 1 or np.ptp(z) <= 0:
        out["reason"] = f"too few slices above the dark level ({len(z)}; need >= 4 in a stack with Z)"
        return out
    A = np.concatenate([z[:, None], (ids[:, None] == np.arange(n_stacks)[None]).astype(float)], 1)
    coef, cov = _huber_fit(A, y)
    slope, se = float(coef[0]), float(np.sqrt(max(cov[0, 0], 0.0)))
    r = y - A @ coef
    out["rss"] = float(np.sum(np.minimum(r**2, (3 * 1.4826 * np.median(np.abs(r)) + 1e-12) ** 2)))
    out["fit"] = np.exp(A @ coef).tolist() if oof_weight is None else (np.exp(A @ coef) * (1 + oof_weight(z))).tolist()
    if oof_weight is not None:
        out["mean"] = (np.exp(y) * (1 + oof_weight(z))).tolist()
    out["slope"], out["slope_se"] = slope, se
    if slope > 2 * se:
        out["reason"] = (f"intensity rises with depth (slope {slope:.3g} +- {se:.2g} /um); "
                         "check `surface` (which end of Z is the tissue surface)")
    elif slope > -2 * se:
        out["reason"] = (f"intensity profile too flat or the stack too shallow to tell (slope {slope:.3g} +- {se:.2g} /um "
                         f"over {np.ptp(z):.3g} um)")
    else:
        out.update(value=float(-1 / slope), se=float(se / slope**2), estimated=True, reason="fitted")
    return out


def _transfer2(freq, z_ref, z, blur, ls, haze_sigma, haze_rate):
    """|T|^2 of the increment from z_ref to z: arrays broadcast as (blur, ls, slice, freq)."""
    d = np.maximum(z - z_ref, 0.0)
    s_inc2 = blur**2 * (2 * z_ref * d + d * d)
    rb = np.exp(-d / ls)
    s_h = haze_sigma + haze_rate * z
    g = np.exp(-2 * np.pi**2 * s_inc2 * freq**2)
    h = np.exp(-2 * np.pi**2 * s_h**2 * freq**2)
    return (rb * g + (1 - rb) * h) ** 2


def fit_spectral(stats, depths, defaults, *, n_ref=None):
    """Fit blur_rate, scattering_length and out_of_focus to per-slice contrast spectra.

    Parameters
    ----------
    stats : list of dict
        :func:`slice_stats` of each stack.
    depths : list of numpy.ndarray
        Depth (um) of each slice of each stack.
    defaults : DeepTissueDegradation
        Supplies ``haze_sigma``, ``haze_rate`` and the fallbacks.
    n_ref : int or None
        Number of shallowest slices forming the reference (default: n_z // 8, at least 2).

    Returns
    -------
    dict
        Per parameter ``{'value', 'interval', 'estimated', 'reason'}``, the mode
        ('point-scanning', 'widefield' or 'unknown'), residuals of both models, and per-slice
        contrast (data and model) for the figure.
    """
    rows = []  # (logK_obs, logK_ref, freq, z_ref, z)
    for st, z in zip(stats, depths):
        order = np.argsort(z)
        n_z = len(z)
        if n_z < 4:
            continue
        m = st["mean"][order]
        S, N = st["signal"][order], st["noise"][order]
        zz = np.asarray(z, float)[order]
        nr = n_ref or max(2, n_z // 8)
        good_m = m > 0
        K = np.where((S > N) & good_m[:, None], S / np.maximum(m[:, None], 1e-300) ** 2, np.nan)
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
                f = st["freq"][sel]
                rows.append((np.log(K[k, sel]), np.log(Kref[sel]), f, zref, zz[k]))
    out = {"mode": "unknown", "reason": None}
    fallback = {
        "blur_rate": {"value": defaults.blur_rate, "interval": None, "estimated": False},
        "scattering_length": {"value": defaults.scattering_length, "interval": None, "estimated": False},
        "out_of_focus": {"value": defaults.out_of_focus, "interval": None, "estimated": False},
    }
    if len(rows) < 3:
        out.update(fallback, reason="too few slices with structure above the noise to compare spectra with depth")
        return out
    lk = np.concatenate([r[0] for r in rows])
    lref = np.concatenate([r[1] for r in rows])
    f = np.concatenate([r[2] for r in rows])
    zr = np.concatenate([np.full(len(r[0]), r[3]) for r in rows])
    z = np.concatenate([np.full(len(r[0]), r[4]) for r in rows])
    B = _BLUR_GRID[:, None, None]
    L = _LS_GRID[None, :, None]
    t2 = _transfer2(f[None, None], zr, z, B, L, defaults.haze_sigma, defaults.haze_rate)
    base = lref + np.log(np.maximum(t2, 1e-300))  # (blur, ls, points)
    # out-of-focus: w(z) = oof (1 + z / Ls); log factor -2 log((1 + w(z)) / (1 + w(zr)))
    O = _OOF_GRID[:, None, None, None]
    wz = O * (1 + z / L[None])
    wr = O * (1 + zr / L[None])
    pred = base[None] - 2 * np.log((1 + wz) / (1 + wr))  # (oof, blur, ls, points)
    rss = np.sum((lk - pred) ** 2, axis=-1)  # (oof, blur, ls)
    n_slices = len(rows)
    tol = 1 + 4.0 / n_slices
    rss_p = rss[0]
    rss_w = rss[1:]
    ip = np.unravel_index(np.argmin(rss_p), rss_p.shape)
    iw = np.unravel_index(np.argmin(rss_w), rss_w.shape)
    best_p, best_w = float(rss_p[ip]), float(rss_w[iw])
    oof_w = float(_OOF_GRID[1:][iw[0]])
    widefield = best_w < 0.7 * best_p and oof_w > 0.05
    out["mode"] = "widefield" if widefield else "point-scanning"
    out["rss"] = {"point-scanning": best_p, "widefield": best_w}
    cube = rss if widefield else rss[:1]
    best = float(cube.min())

    def profile(axis_keep, grid, name, default):
        prof = np.moveaxis(cube, axis_keep, 0).reshape(len(grid), -1).min(1)
        ok = np.flatnonzero(prof <= best * tol)
        val = float(grid[int(np.argmin(prof))])
        lo, hi = float(grid[ok.min()]), float(grid[ok.max()])
        identified = not (ok.min() == 0 and ok.max() == len(grid) - 1)
        res = {"value": val if identified else default, "interval": [lo, hi], "estimated": bool(identified),
               "best_on_grid": val}
        if not identified:
            res["reason"] = f"{name} not identified by the data (any value in [{lo:g}, {hi:g}] fits)"
        return res

    out["blur_rate"] = profile(1, _BLUR_GRID, "blur_rate", defaults.blur_rate)
    sl = profile(2, _LS_GRID, "scattering_length", defaults.scattering_length)
    if sl["estimated"] and np.isinf(sl["value"]):
        sl["value"] = None  # no haze detected: the model's None
    out["scattering_length"] = sl
    if widefield:
        out["out_of_focus"] = profile(0, _OOF_GRID, "out_of_focus", defaults.out_of_focus)
    else:
        out["out_of_focus"] = {"value": 0.0, "interval": None, "estimated": True,
                               "reason": "point-scanning model fits as well (no out-of-focus term)"}
    for k in ("blur_rate", "scattering_length", "out_of_focus"):
        v = out[k]
        if v.get("interval") is not None:
            v["interval"] = [None if np.isinf(x) else x for x in v["interval"]]
        if isinstance(v.get("best_on_grid"), float) and np.isinf(v["best_on_grid"]):
            v["best_on_grid"] = None
    return out
