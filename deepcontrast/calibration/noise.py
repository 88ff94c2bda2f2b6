"""Poisson-Gaussian noise from the raw images alone: a robust mean-variance fit.

Model (the standard one for photon-counting cameras and PMTs, e.g. Foi et al. 2008)::

    var(pixel) = (mean - offset) / photons + read_noise**2

``photons`` is the number of detected photons per unit of image intensity (1 / gain),
``offset`` the dark level (camera offset, the ``background`` of
:class:`~deepcontrast.degradation.DeepTissueDegradation`), ``read_noise`` the standard
deviation of additive Gaussian noise (incl. quantization), all in raw image units.

Method
------
1. Structure is removed with the 3x3 kernel ``[[1,-2,1],[-2,4,-2],[1,-2,1]] / 6`` (unit
   norm, blind to constant and linear intensity: Immerkaer 1996), so its output has the
   noise variance wherever the image is locally smooth.
2. Each plane is cut into 8x8 blocks; per block the mean intensity and the mean squared
   residual (a local variance) are recorded. Blocks touching clipped pixels (the dtype
   maximum when it is frequent, i.e. saturation) are dropped.
3. Blocks are binned by mean (bins even in ``sqrt(mean)``); in each bin the half of the
   blocks with the least structure -- curvature of the Gaussian-smoothed image, which the
   noise hardly affects -- is kept, and the plain means of their local variances and
   intensities form one point (structure only ever *adds* variance; selecting on the
   variance itself would bias low for skewed, low-count noise).
4. ``var = slope * mean + intercept`` is fitted by iteratively reweighted least squares
   (weights 1 / predicted variance**2, Huber-type down-weighting of outliers);
   ``photons = 1 / slope`` with the standard error from the fit.
5. The mean-variance line alone cannot tell the offset from read noise (only the intercept
   ``read_noise**2 - offset / photons`` is identified). The third cumulant can: Poisson
   noise has third cumulant ``(mean - offset) / photons**2``, Gaussian read noise none. So
   in the dimmest third of the bins ``offset = mean - photons**2 * kappa3`` (kappa3 from the
   cubed residuals of all blocks of the bin, since selecting low-variance blocks would bias
   it low; weighted median over bins), clipped to the bounds ``[max(P, O0), D]``: ``D``
   the dark level (0.5th percentile of block means; the offset cannot exceed it), ``P``
   the 0.1th percentile of the pixels, ``O0`` where the fitted variance reaches zero. Then ``read_noise = sqrt(max(0, intercept + slope * offset))``.
   This matters when dim signal covers the whole image: the dark level then over-estimates
   the offset and biases the attenuation fit. Read-noise tolerance: its square is only as
   good as ``slope * offset`` (i.e. ``offset_se / photons``); the noise *variance* at every
   intensity, which is what the degradation adds, is the fitted line either way.

When the variance does not grow significantly with intensity (slope below 3 standard
errors: additive noise only, or a flat image whose narrow intensity range cannot separate
shot from read noise) all variance is attributed to read noise (``photons=None``,
status 'read-only'). Images without any noise give ``photons=None, read_noise=0``
('noise-free'); smooth noise-free structure can leak a little residual, then a very large
photon count (negligible noise) is reported instead.
"""
import logging
from functools import lru_cache

import numpy as np
from scipy import ndimage as ndi

__all__ = ["NoiseFit", "fit_noise", "local_mean_variance"]

log = logging.getLogger(__name__)

_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float64) / 6.0
_BLOCK = 8
_QUANTILE = 0.4
_STRUCT_Q = 0.5


class NoiseFit(dict):
    """Result of :func:`fit_noise` (a plain, JSON-serializable dict with attribute access).

    Keys: ``photons`` (float or None), ``photons_se``, ``read_noise``, ``read_noise_se``,
    ``offset``, ``slope``, ``intercept``, ``status`` ('estimated', 'read-only', 'noise-free'), ``bins`` ({'mean': [...], 'var': [...]}) for the figure, ``n_blocks``.
    """

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"NoiseFit has no key {key!r}; keys: {', '.join(self)}") from None


def local_mean_variance(plane, block=_BLOCK, return_structure=False):
    """Block means and structure-free local noise variances of one 2D plane.

    Parameters
    ----------
    plane : numpy.ndarray
        2D float array.
    block : int
        Block edge length in pixels (default 8).

    Returns
    -------
    (means, variances, valid, third) : tuple of 1D numpy.ndarray
        ``valid`` is False for blocks touching clipped pixels; ``third`` is the local third
        cumulant of the noise (6 x the mean cubed residual: the kernel's cubes sum to 1/6).
    """
    plane = np.asarray(plane, np.float64)
    ny, nx = plane.shape
    res = ndi.correlate(plane, _KERNEL, mode="reflect")
    by, bx = ny // block, nx // block
    if by == 0 or bx == 0:
        empty = (np.empty(0), np.empty(0), np.empty(0, bool), np.empty(0))
        return empty + (np.empty(0),) if return_structure else empty
    crop = (slice(0, by * block), slice(0, bx * block))

    def blocks(a):
        return a[crop].reshape(by, block, bx, block).swapaxes(1, 2).reshape(by * bx, block * block)

    means = blocks(plane).mean(1)
    rb = blocks(res)
    var = (rb**2).mean(1)
    third = 6 * (rb**3).mean(1)
    clip = _clipped_mask(plane)
    valid = ~blocks(ndi.binary_dilation(clip, iterations=1)).any(1) if clip.any() else np.ones(len(means), bool)
    if not return_structure:
        return means, var, valid, third
    # structure score: curvature of the smoothed plane (noise averaged out) relative to the block's level
    sm = ndi.gaussian_filter(plane, 2.0)
    curv = ndi.correlate(sm, _KERNEL, mode="reflect")
    return means, var, valid, third, (blocks(curv) ** 2).mean(1)


def _clipped_mask(plane):
    """Pixels at the plane's maximum when that value is frequent (saturation).

    The minimum is not masked: exact zeros are legitimate Poisson counts in dark regions.
    """
    hit = plane == plane.max()
    return hit if hit.mean() > 1e-3 else np.zeros(plane.shape, bool)


@lru_cache(maxsize=4)
def _quantile_bias(block=_BLOCK, q=_QUANTILE):
    """Ratio of the q-quantile to the mean of block variances for pure white noise."""
    rng = np.random.default_rng(12345)
    noise = rng.normal(size=(256, 256))
    _, var, _, _ = local_mean_variance(noise, block)
    return float(np.quantile(var, q) / np.mean(var))


def fit_noise(planes, *, n_bins=24, min_blocks=8):
    """Fit ``var = (mean - offset) / photons + read_noise**2`` to raw 2D planes.

    Parameters
    ----------
    planes : iterable of numpy.ndarray
        2D planes (YX) of raw data in its original units (any real dtype).
    n_bins : int
        Number of intensity bins (quantiles of the block means).
    min_blocks : int
        Minimum number of blocks per bin.

    Returns
    -------
    NoiseFit

    Raises
    ------
    ValueError
        If the planes are too small (< 8x8) or constant.
    """
    means, var, third, struct, pixel_floor = _block_statistics(planes)
    _check_usable(means, var, min_blocks)
    offset = dark = float(np.percentile(means, 0.5))
    if pixel_floor is None:
        pixel_floor = dark
    bm, bv, bn, bt = _binned_points(means, var, third, struct, n_bins, min_blocks)
    out = NoiseFit(offset=offset, bins={"mean": bm.tolist(), "var": bv.tolist()}, n_blocks=int(len(means)))
    # blocks of exact zeros (a black medium around a spheroid or embryo: Poisson counts of no light)
    # say nothing about the noise; with most of the field black they would make the median 0
    noisy = var[var > 0] if np.count_nonzero(var > 0) >= 2 * min_blocks else var
    typical = float(np.sqrt(max(np.median(noisy), 0.0)))
    if typical == 0 or typical < 1e-6 * max(abs(float(np.max(means))), 1e-30):
        out.update(photons=None, photons_se=None, read_noise=0.0, read_noise_se=0.0, slope=0.0, intercept=0.0,
                   status="noise-free")
        return out
    slope, intercept, cov = _irls_line(bm, bv, bn) if len(bm) >= 3 else (0.0, 0.0, np.full((2, 2), np.inf))
    slope_se = float(np.sqrt(cov[0, 0]))
    if not (slope > 3 * slope_se and slope > 0):
        # the slope is not identified (too narrow an intensity range, or additive noise only)
        v = float(np.quantile(var, _QUANTILE) / _quantile_bias())
        out.update(photons=None, photons_se=None, read_noise=float(np.sqrt(v)), read_noise_se=None,
                   slope=float(slope), intercept=float(intercept), status="read-only")
        return out
    photons = 1.0 / slope
    lo_b, hi_b = min(max(pixel_floor, -intercept / slope), dark), dark  # both are lower bounds: take the tighter
    offset, offset_se = _offset_from_skew(bm, bt, bn, photons, lo_b, hi_b)
    out.update(offset=offset, offset_se=offset_se, dark_level=dark, offset_bounds=[float(lo_b), float(hi_b)],
               offset_method="third cumulant of the noise (Poisson skew) at the dimmest intensities")
    photons_se = float(np.sqrt(cov[0, 0]) / slope**2)
    read, read_se = _read_noise(slope, intercept, cov, offset)
    out.update(photons=float(photons), photons_se=photons_se, read_noise=read, read_noise_se=read_se,
               slope=float(slope), intercept=float(intercept), status="estimated")
    return out


def _block_statistics(planes):
    """Steps 1-2: unclipped blocks' means, variances, third cumulants and structure scores of all planes.

    Also returns the 0.1th percentile of the pixels (every 4th along Y and X; None without planes).
    """
    ms, vs, ts, ss = [], [], [], []
    floors = []
    for p in planes:
        floors.append(np.asarray(p)[::4, ::4])
        m, v, ok, t, st = local_mean_variance(p, return_structure=True)
        ss.append(st[ok])
        ms.append(m[ok])
        vs.append(v[ok])
        ts.append(t[ok])
    means = np.concatenate(ms) if ms else np.empty(0)
    var = np.concatenate(vs) if vs else np.empty(0)
    third = np.concatenate(ts) if ts else np.empty(0)
    struct = np.concatenate(ss) if ss else np.empty(0)
    pixel_floor = float(min(np.percentile(np.ravel(p), 0.1) for p in floors)) if floors else None
    return means, var, third, struct, pixel_floor


def _check_usable(means, var, min_blocks):
    """Refuse too few blocks and constant images, naming the fix."""
    if len(means) < 2 * min_blocks:
        raise ValueError(
            f"too little usable image area to estimate noise ({len(means)} unclipped {_BLOCK}x{_BLOCK} blocks); "
            "give larger or more images, or pass an explicit degradation, e.g. DeepTissueDegradation(photons=50)"
        )
    span = float(np.ptp(means))
    if span == 0 and np.all(var == 0):
        raise ValueError(
            f"the images are constant (all values {means[0]:g}); there is no noise or structure to calibrate from. "
            "Check the input files, or pass an explicit degradation, e.g. DeepTissueDegradation(photons=50)"
        )


def _binned_points(means, var, third, struct, n_bins, min_blocks):
    """Step 3: one (mean, variance, count, third cumulant) point per intensity bin, as arrays."""
    # bins evenly spaced in sqrt(mean) (dense where most blocks are, still reaching the bright end)
    u = np.sqrt(means - means.min())
    edges = np.linspace(0, u.max() * (1 + 1e-9) + 1e-300, int(max(2, n_bins)) + 1)
    idx = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, len(edges) - 2)
    bm, bv, bn, bt = [], [], [], []
    for b in range(len(edges) - 1):
        sel = idx == b
        if sel.sum() < min_blocks:
            continue
        # the least structured half of the blocks, chosen on the smoothed image (not on their
        # noise), so the plain mean of their variances is unbiased whatever the noise distribution
        low = sel & (struct <= np.quantile(struct[sel], _STRUCT_Q))
        bm.append(float(np.mean(means[low])))
        bv.append(float(np.mean(var[low])))
        bt.append(float(np.mean(third[sel])))  # all blocks: selecting low variance would bias it low
        bn.append(int(sel.sum()))
    return np.array(bm), np.array(bv), np.array(bn), np.array(bt)


def _offset_from_skew(bm, bt, bn, photons, lo_b, hi_b):
    """Step 5: the offset (and its standard error) from the noise's third cumulant, within [lo_b, hi_b]."""
    # Poisson's third cumulant is signal / photons**2, Gaussian read noise has none: each
    # bin's mean minus photons**2 * third cumulant estimates the offset; use the dimmest third
    dim = np.argsort(bm)[: max(1, len(bm) // 3)]
    est = bm[dim] - photons**2 * bt[dim]
    offset = float(np.clip(_weighted_median(est, bn[dim]), lo_b, hi_b))
    offset_se = float(1.4826 * np.median(np.abs(est - np.median(est))) / np.sqrt(len(est)))
    return offset, offset_se


def _read_noise(slope, intercept, cov, offset):
    """Step 5, end: read noise ``sqrt(intercept + slope * offset)`` and its standard error."""
    r2 = intercept + slope * offset
    r2_se = float(np.sqrt(max(cov[1, 1] + offset**2 * cov[0, 0] + 2 * offset * cov[0, 1], 0.0)))
    read = float(np.sqrt(max(r2, 0.0)))
    read_se = float(np.sqrt(r2 + r2_se) - read) if r2 > 0 else float(np.sqrt(r2_se))
    return read, read_se


def _weighted_median(x, w):
    o = np.argsort(x)
    c = np.cumsum(np.asarray(w, float)[o])
    return float(x[o][np.searchsorted(c, 0.5 * c[-1])])


def _irls_line(x, y, n, n_iter=8):
    """Weighted robust line fit y = s x + c; weights ~ n / y_pred**2, Huber on standardized residuals.

    Returns slope, intercept and their covariance (scaled by the residual variance).
    """
    A = np.stack([x, np.ones_like(x)], 1)
    floor = 1e-2 * float(np.max(y)) + 1e-300
    w = n / np.maximum(y, floor) ** 2
    coef = np.linalg.lstsq(A * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
    for _ in range(n_iter):
        pred = np.maximum(A @ coef, floor)
        base = n / pred**2
        r = (y - pred) * np.sqrt(base)
        s = 1.4826 * np.median(np.abs(r - np.median(r))) + 1e-300
        k = 1.5 * s
        hub = np.where(np.abs(r) <= k, 1.0, k / np.abs(r))
        w = base * hub
        coef = np.linalg.lstsq(A * np.sqrt(w)[:, None], y * np.sqrt(w), rcond=None)[0]
    Aw = A * np.sqrt(w)[:, None]
    resid = (y - A @ coef) * np.sqrt(w)
    dof = max(len(x) - 2, 1)
    sigma2 = float(resid @ resid) / dof
    try:
        cov = np.linalg.inv(Aw.T @ Aw) * sigma2
    except np.linalg.LinAlgError:
        cov = np.full((2, 2), np.inf)
    return float(coef[0]), float(coef[1]), cov
