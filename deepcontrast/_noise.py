"""Shot noise of the forward model (numpy only).

Split out of :mod:`deepcontrast.degradation` to keep that module short.
"""
import numpy as np

__all__ = []

#: expected photon count above which shot noise is drawn from the Gaussian limit of the Poisson
#: law (same mean and variance; skewness 1/sqrt(count) < 0.23): several times faster than
#: numpy's Poisson sampler, which dominated data generation
POISSON_GAUSS_SWITCH = 20.0


def add_noise(out, photons, read_noise, background, rng):
    """Shot noise (``photons`` per unit of intensity above ``background``) and Gaussian read
    noise (std ``read_noise``) on the float32 image ``out`` (modified when there is read noise
    only); ``photons=None`` and ``read_noise=0`` return ``out`` itself."""
    if photons is None and not read_noise:
        return out
    rng = np.random.default_rng(rng)
    if photons is not None:
        counts = np.clip(out - np.float32(background), 0, None)
        counts *= np.float32(photons)
        noisy = _shot_noise(counts, rng)
        noisy /= np.float32(photons)
        out = noisy + np.float32(background)
    if read_noise:
        out += rng.normal(0.0, read_noise, size=out.shape).astype(np.float32)
    return out.astype(np.float32, copy=False)


def _shot_noise(counts, rng):
    """Poisson-distributed counts (float32), exact below ``POISSON_GAUSS_SWITCH``."""
    low = counts < POISSON_GAUSS_SWITCH
    noisy = np.empty_like(counts)
    n_low = int(np.count_nonzero(low))
    if n_low == counts.size:
        return rng.poisson(counts).astype(np.float32)
    if n_low:
        noisy[low] = rng.poisson(counts[low])
    high = ~low if n_low else slice(None)
    lam = counts[high]
    lam_noisy = np.sqrt(lam)
    lam_noisy *= rng.standard_normal(lam.shape, dtype=np.float32)
    lam_noisy += lam
    noisy[high] = np.maximum(lam_noisy, 0)
    return noisy
