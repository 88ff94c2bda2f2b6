"""Intensity levels an iteration can drift: mean, bright structures, minimum, and light below the background.

"Below the background" is judged in units of the raw's own noise at the background level
(:func:`background_noise`), not in a fraction of the intensity range: a raw image's noise dips
below its background by a few noise standard deviations as a matter of course (issue 20 met a
real light-sheet stack flagged "<bg" against its own noise), while negative light made by a
network is far beyond its noise. The raw itself is never flagged.
"""
import numpy as np

__all__ = ["background_noise", "intensity_stats", "BELOW_BG_NOISE_UNITS", "LOW_PERCENTILE"]

#: an image is below the background when its LOW_PERCENTILE is below it by this many noise std
BELOW_BG_NOISE_UNITS = 4.0
#: the low tail judged (a percentile, not the minimum: the minimum of a million noisy pixels is ~5 std low)
LOW_PERCENTILE = 0.1
#: pixels sampled for the noise estimate (evenly strided)
_MAX_SAMPLES = 2_000_000


def background_noise(raw, background=0.0):
    """Standard deviation of the raw's noise at the background level (intensity units).

    The larger of two estimates: the RMS of the raw's dips below ``background`` (noise around
    the background is symmetric, so the RMS of its lower half is its standard deviation; it
    also grows when ``background`` is set too high, which is what a tolerance should do), and
    the robust spread (1.4826 MAD) of neighbour differences / sqrt(2) along X over the darkest
    10% of the pixels. A noise-free raw gets a floor of 1e-6 of its intensity range.

    Parameters
    ----------
    raw : array_like
        The raw image (X last).
    background : float
        Intensity of no light.

    Returns
    -------
    float

    Examples
    --------
    >>> noise = np.random.default_rng(0).normal(100.0, 2.0, (256, 256))
    >>> round(background_noise(noise, 100.0), 1)
    2.0
    """
    x = np.asarray(raw, np.float64)
    flat = x.ravel()
    step = max(1, flat.size // _MAX_SAMPLES)
    sample = flat[::step]
    dips = sample[sample < background] - background
    s_dips = float(np.sqrt(np.mean(dips * dips))) if dips.size >= 32 else 0.0
    s_diff = 0.0
    if x.ndim >= 1 and x.shape[-1] >= 2:
        d = (np.diff(x, axis=-1) / np.sqrt(2.0)).ravel()[::step]
        left = x[..., :-1].ravel()[::step]
        dark = left <= np.percentile(left, 10)
        if dark.sum() >= 32:
            dd = d[dark]
            s_diff = float(1.4826 * np.median(np.abs(dd - np.median(dd))))
    floor = 1e-6 * float(np.ptp(sample)) if sample.size else 0.0
    return max(s_dips, s_diff, floor, np.finfo(np.float32).tiny)


def intensity_stats(img, raw, *, mask=None, background=0.0, noise=None):
    """Mean, 99.5th percentile and minimum of ``img`` (in ``mask``), and whether it goes below background.

    ``below_background`` is True when the ``LOW_PERCENTILE`` (0.1th) percentile of ``img`` lies
    more than ``BELOW_BG_NOISE_UNITS`` (4) noise standard deviations below ``background``:
    negative light beyond anything the raw's noise does (pure noise at the background level
    reaches -3.1 std at its 0.1th percentile). The raw itself (``img`` equal to ``raw``) is
    never flagged.

    Parameters
    ----------
    img, raw : array_like
        The image and the raw image it came from (the same shape).
    mask : array_like of bool, optional
        Region (e.g. the deepest slices); default the whole image.
    background : float
        Intensity of no light.
    noise : float, optional
        Noise standard deviation at the background; default :func:`background_noise` of the
        whole ``raw``.

    Returns
    -------
    dict
        ``mean``, ``p99_5``, ``min`` (floats), ``below_background`` (bool) and
        ``below_background_noise``: how far (in noise std) the 0.1th percentile lies below the
        background (negative: above it).

    Examples
    --------
    >>> raw = np.random.default_rng(0).normal(0.0, 1.0, (64, 64))
    >>> intensity_stats(raw - 10, raw)['below_background'], intensity_stats(raw, raw)['below_background']
    (True, False)
    """
    x = np.asarray(img, np.float64)
    raw = np.asarray(raw)
    is_raw = x.shape == raw.shape and (img is raw or np.array_equal(x, raw))
    sigma = float(background_noise(raw, background) if noise is None else noise)
    if mask is not None:
        x = x[np.asarray(mask, bool)]
    low = float(np.percentile(x, LOW_PERCENTILE))
    units = (float(background) - low) / sigma
    return {"mean": float(x.mean()), "p99_5": float(np.percentile(x, 99.5)), "min": float(x.min()),
            "below_background": bool(units > BELOW_BG_NOISE_UNITS and not is_raw),
            "below_background_noise": units}
