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
    See :mod:`deepcontrast.calibration.spectral` (fitted from the spectra :func:`slice_stats`
    computes here).
"""
import logging

import numpy as np
from scipy import fft as sfft

from .spectral import axial_factor, model_transfer

__all__ = ["axial_correlation", "contrast_vs_model", "fit_attenuation", "slice_stats"]

log = logging.getLogger(__name__)



def slice_stats(stack, vyx, offset, noise, n_bins=24, vz=None):
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
    vz : float or None
        Slice spacing (um); sets how many lags of the axial correlation are measured (about
        24 um worth, 4 to 64 slices; 16 slices when None).

    Returns
    -------
    dict
        ``mean`` (n_z,), ``freq`` (n_bins,) cycles/um, ``signal`` and ``noise`` power (n_z, n_bins),
        ``rho`` (n_bins, n_lags + 1): the structure's correlation between slices ``lag`` apart
        at each frequency (``rho[:, 0] = 1``), see :func:`axial_correlation`.
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
    n_lags = int(min(n_z - 1, 16 if vz is None else np.clip(np.ceil(24.0 / vz), 4, 64)))

    def radial(p):
        return np.bincount(idx[ok], weights=p.ravel()[ok], minlength=n_bins) / np.maximum(counts, 1)

    power = np.zeros((n_z, n_bins))
    cross = np.zeros((n_z, n_lags + 1, n_bins))  # cross[k, lag]: slices k and k + lag
    recent = []  # spectra of the previous n_lags slices, newest last
    for k in range(n_z):
        spec = sfft.rfft2((stack[k] - stack[k].mean()) * win, workers=-1).astype(np.complex64)
        power[k] = radial(np.abs(spec) ** 2 / wnorm)
        for lag, prev in enumerate(reversed(recent), start=1):
            cross[k - lag, lag] = radial(np.real(prev * np.conj(spec)) / wnorm)
        recent = (recent + [spec])[-n_lags:] if n_lags else []
    photons, read = noise.get("photons"), noise.get("read_noise") or 0.0
    nvar = np.full(n_z, read**2, float)
    if photons:
        nvar += np.clip(means, 0, None) / photons
    # a real-FFT half-plane counts each frequency once; white noise power per bin is the variance
    freq = np.sqrt(edges[:-1] * edges[1:])
    valid_bins = counts > 0
    signal, noise_power = (power - nvar[:, None])[:, valid_bins], np.repeat(nvar[:, None], valid_bins.sum(), 1)
    return {"mean": means, "freq": freq[valid_bins], "signal": signal, "noise": noise_power,
            "counts": counts[valid_bins], "n_pixels": ny * nx,
            "rho": axial_correlation(cross[:, :, valid_bins], signal, noise_power)}


def axial_correlation(cross, signal, noise):
    """Correlation of the structure between slices ``lag`` apart, per frequency bin.

    ``rho[f, lag] = sum_k C_k,lag(f) / sum_k sqrt(S_k(f) S_k+lag(f))`` over the pairs of slices
    whose structure is above the noise in both (``C`` the radial cross-power, free of noise
    for ``lag >= 1`` since the noise of different slices is independent; ``S`` the
    noise-corrected power). It tells how much an axial blur lowers a slice's contrast at each
    frequency: thin structures (fibres, fine texture) decorrelate within a slice or two, large
    ones (nuclei) over several. Clipped to [-1, 1]; 0 where no pair qualifies.

    Parameters
    ----------
    cross : numpy.ndarray
        (n_z, n_lags + 1, n_bins) radial cross-power of slice ``k`` with slice ``k + lag``.
    signal, noise : numpy.ndarray
        (n_z, n_bins) noise-corrected power and noise power.

    Returns
    -------
    numpy.ndarray
        (n_bins, n_lags + 1), ``rho[:, 0] = 1``.
    """
    n_z, n_l = cross.shape[:2]
    good = signal > noise
    S = np.clip(signal, 0, None)
    rho = np.zeros((signal.shape[1], n_l))
    rho[:, 0] = 1.0
    for lag in range(1, n_l):
        both = good[:-lag] & good[lag:]
        num = np.where(both, cross[: n_z - lag, lag], 0).sum(0)
        den = np.where(both, np.sqrt(S[:-lag] * S[lag:]), 0).sum(0)
        rho[:, lag] = np.clip(np.divide(num, den, out=np.zeros_like(num), where=den > 0), -1, 1)
    return rho


def contrast_vs_model(st, z, deg, n_ref=None):
    """Noise-corrected structure contrast (std / mean) per slice, and the model's prediction of it.

    For the calibration report (measured vs calibrated model); not to be confused with
    :func:`deepcontrast.metrics.contrast_profile`, the contrast of an image per slice.

    The model curve starts from the shallowest slices (as in
    :func:`~deepcontrast.calibration.spectral.fit_spectral`) and applies the model's transfer
    of ``deg`` (blur, haze, out-of-focus, with the axial blur acting through the stack's
    measured axial correlation) down to each depth.

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
    ref = (np.arange(len(z)) < nr) & (m > 0)  # reference depths with light (empty medium has none)
    if not ref.any():
        ref = np.arange(len(z)) < nr
    zref = float(z[ref].mean())
    with np.errstate(divide="ignore", invalid="ignore"):
        Kref = np.mean(S[ref] / m[ref, None] ** 2, 0)
    axial = axial_factor(st["rho"], np.median(np.diff(z)) if len(z) > 1 else 1.0) if "rho" in st else None
    t2 = model_transfer(st["freq"][None], z[:, None], deg, axial) / model_transfer(st["freq"], zref, deg, axial)
    w = deg.out_of_focus_weight
    model = np.sqrt((Kref[None] * t2 * c).sum(1)) / ((1 + w(z)) / (1 + w(zref)))
    model = np.where(z >= zref, model, np.nan)
    data = np.where(m > 0, data, np.nan)
    return z, data, model


def _huber_fit(A, y, n_iter=10, weights=None):
    """Robust (Huber) least squares; ``weights`` (default 1) multiply the Huber weights of the points."""
    w0 = np.ones_like(y) if weights is None else np.asarray(weights, float)
    coef = np.linalg.lstsq(A * np.sqrt(w0)[:, None], y * np.sqrt(w0), rcond=None)[0]
    w = w0
    for _ in range(n_iter):
        r = y - A @ coef
        s = 1.4826 * np.median(np.abs(r - np.median(r))) + 1e-12
        w = w0 * np.where(np.abs(r) <= 1.5 * s, 1.0, 1.5 * s / np.maximum(np.abs(r), 1e-300))
        coef = np.linalg.lstsq(A * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
    r = (y - A @ coef) * np.sqrt(w)
    dof = max(len(y) - A.shape[1], 1)
    sigma2 = float(r @ r) / dof
    cov = np.linalg.pinv((A * w[:, None]).T @ A) * sigma2
    return coef, cov


def fit_attenuation(profiles, default, oof_weight=None, weights=None):
    """Fit ``mean(z) - offset = c_i exp(-z / L) (1 + w(z))`` over per-stack depth profiles.

    Parameters
    ----------
    profiles : list of (z, mean) pairs of 1D arrays
        Depths (um) and slice means above the offset, one pair per stack.
    default : float or None
        Attenuation length to fall back to.
    oof_weight : callable or None
        ``w(z)`` of an out-of-focus term to divide out (None: point-scanning).
    weights : list of 1D arrays or None
        One weight per point of each profile, multiplying the robust fit's own (e.g. its number
        of voxels: the depth bins of a curved sample hold very different volumes of tissue);
        None: every slice alike.

    Returns
    -------
    dict
        ``value``, ``se``, ``estimated`` (bool), ``reason``, ``z`` and ``mean`` (used points),
        ``fit`` (model at those depths).
    """
    return _fit_attenuation(profiles, default, oof_weight, weights)


def _fit_attenuation(profiles, default, oof_weight, weights=None):
    zs, ys, ids, ws = [], [], [], []
    for i, (z, m) in enumerate(profiles):
        z, m = np.asarray(z, float), np.asarray(m, float)
        if oof_weight is not None:
            m = m / (1 + oof_weight(z))
        good = m > 0
        zs.append(z[good])
        ys.append(np.log(m[good]))
        ids.append(np.full(good.sum(), i))
        ws.append(np.ones(good.sum()) if weights is None else np.asarray(weights[i], float)[good])
    z, y, ids, ws = np.concatenate(zs), np.concatenate(ys), np.concatenate(ids), np.concatenate(ws)
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
    coef, cov = _huber_fit(A, y, weights=None if weights is None else ws)
    slope, se = float(coef[0]), float(np.sqrt(max(cov[0, 0], 0.0)))
    r = y - A @ coef
    out["rss"] = float(np.sum(np.minimum(r**2, (3 * 1.4826 * np.median(np.abs(r)) + 1e-12) ** 2)))
    out["fit"] = np.exp(A @ coef).tolist() if oof_weight is None else (np.exp(A @ coef) * (1 + oof_weight(z))).tolist()
    if oof_weight is not None:
        out["mean"] = (np.exp(y) * (1 + oof_weight(z))).tolist()
    out["slope"], out["slope_se"] = slope, se
    return decide_attenuation(out, default)


def decide_attenuation(out, default):
    """Set ``value``, ``se``, ``estimated`` and ``reason`` of a fit from its ``slope`` and ``slope_se``
    (per um): a slope within two standard errors of zero, or rising, keeps ``default``."""
    slope, se, z = out["slope"], out["slope_se"], np.asarray(out["z"], float)
    out.update(value=default, se=None, estimated=False)
    if slope > 2 * se:
        out["reason"] = (f"intensity rises with depth (slope {slope:.3g} +- {se:.2g} /um); "
                         "check `surface` (which end of Z is the tissue surface)")
    elif slope > -2 * se:
        out["reason"] = (f"intensity profile too flat or the stack too shallow to tell (slope {slope:.3g} +- {se:.2g} /um "
                         f"over {np.ptp(z):.3g} um)")
    else:
        out.update(value=float(-1 / slope), se=float(se / slope**2), estimated=True, reason="fitted")
    return out
