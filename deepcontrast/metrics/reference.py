"""Detail retention and ground-truth metrics (PSNR, SSIM, NRMSE) with a stated normalization."""
import numpy as np
from scipy import ndimage as ndi

from .contrast import _values


def _bandpass(img, band):
    img = np.asarray(img, dtype=np.float64)
    lo, hi = band
    sig = lambda s: [0] * (img.ndim - 2) + [s, s]  # noqa: E731 (filter Y and X only)
    return ndi.gaussian_filter(img, sig(lo), mode="reflect") - ndi.gaussian_filter(img, sig(hi), mode="reflect")


def detail_retention(before, after, band=(1.0, 4.0)):
    r"""Fraction of the fine structure of ``before`` that survives in ``after``, in [0, 1].

    Both images are band-passed laterally with a difference of Gaussians,
    ``B(I) = I * G(band[0]) - I * G(band[1])`` (sigmas in pixels, over Y and X, the last two
    axes), and the score is their Pearson correlation clipped at 0:

    .. math:: R = \max\!\big(0,\ \mathrm{corr}(B(\text{before}), B(\text{after}))\big)

    Why this band: the lower sigma (1 px) suppresses pixel-scale shot noise, so removing noise
    is not counted as losing detail; the upper sigma (4 px) removes the smooth haze and the
    slow intensity changes that contrast restoration is *meant* to change. What is left are
    structures a few pixels wide (edges, small cells, processes) - the detail that repeated
    iterations erode. Correlation is invariant to gain and offset, so a brighter or
    background-subtracted image still scores 1 when its fine structure is unchanged.

    Parameters
    ----------
    before, after : array_like
        Images of the same shape (Y and X last).
    band : (float, float)
        Inner and outer Gaussian sigmas in pixels, ``0 <= band[0] < band[1]``.

    Returns
    -------
    float
        1 for an affine copy (``a * before + b`` with ``a > 0``), 0 when ``after`` has no
        structure in the band (e.g. constant) or is anti-correlated.

    Raises
    ------
    ValueError
        If shapes differ, the band is invalid, or ``before`` has no structure in the band
        (e.g. a constant image): there is then no detail to retain.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((32, 32))
    >>> round(detail_retention(x, 3 * x + 1), 6)
    1.0
    """
    before, after = np.asarray(before, np.float64), np.asarray(after, np.float64)
    if before.shape != after.shape:
        raise ValueError(f"before {before.shape} and after {after.shape} must have the same shape")
    if before.ndim < 2:
        raise ValueError(f"detail_retention needs images with Y and X as the last two axes, got shape {before.shape}")
    if not (len(band) == 2 and 0 <= band[0] < band[1]):
        raise ValueError(f"band must be (inner_sigma, outer_sigma) in pixels with 0 <= inner < outer, got {band}")
    _values(before, name="before")
    _values(after, name="after")
    b, a = _bandpass(before, band), _bandpass(after, band)
    b, a = b - b.mean(), a - a.mean()
    nb, na = np.sqrt(np.sum(b * b)), np.sqrt(np.sum(a * a))
    if nb <= 1e-12 * max(1.0, float(np.abs(before).max())):
        raise ValueError(f"'before' has no structure in the band {band} px (e.g. it is constant); nothing to retain")
    if na <= 1e-12 * max(1.0, float(np.abs(after).max())):
        return 0.0
    return float(np.clip(np.sum(a * b) / (na * nb), 0.0, 1.0))


# --------------------------------------------------------------------------- ground truth
def _normalize_pair(pred, truth, normalize):
    pred, truth = np.asarray(pred, np.float64), np.asarray(truth, np.float64)
    if pred.shape != truth.shape:
        raise ValueError(f"prediction {pred.shape} and ground truth {truth.shape} must have the same shape")
    _values(pred, name="prediction")
    _values(truth, name="ground truth")
    if normalize is None:
        rng_ = float(truth.max() - truth.min())
        if rng_ == 0:
            raise ValueError("ground truth is constant, so its data range is 0; pass a ground truth with structure")
        return pred, truth, rng_
    if normalize not in ("affine", "percentile"):
        raise ValueError(f"normalize must be 'affine', 'percentile' or None, got {normalize!r}")
    lo, hi = np.percentile(truth, [0.1, 99.9])
    if hi == lo:
        raise ValueError("ground truth is (nearly) constant: its 0.1 and 99.9 percentiles are equal; "
                         "PSNR/SSIM need a ground truth with structure")
    t = (truth - lo) / (hi - lo)
    if normalize == "percentile":
        plo, phi = np.percentile(pred, [0.1, 99.9])
        p = (pred - plo) / (phi - plo) if phi > plo else np.zeros_like(pred)
    else:
        pc = pred - pred.mean()
        var = float(np.sum(pc * pc))
        scale = float(np.sum(pc * (t - t.mean())) / var) if var > 0 else 0.0
        p = t.mean() + scale * pc
    return p, t, 1.0


_NORM_DOC = """normalize : {'affine', 'percentile', None}
        How intensities are made comparable. The ground truth is always scaled so its 0.1 and
        99.9 percentiles map to 0 and 1 (CSBDeep's convention) and ``data_range = 1``. Then
        ``'affine'`` (default) maps the prediction by the least-squares affine fit
        ``a * pred + b`` to the normalized truth (CSBDeep's ``normalize_minmse``: a gain or
        offset is not counted as error); ``'percentile'`` normalizes the prediction by its own
        0.1/99.9 percentiles; ``None`` compares raw values with ``data_range = truth.max() - truth.min()``."""


def psnr(pred, truth, *, normalize="affine"):
    r"""Peak signal-to-noise ratio ``10 log10(data_range^2 / MSE)`` in dB, via scikit-image.

    Parameters
    ----------
    pred, truth : array_like
        Prediction and ground truth of the same shape.
    {norm}

    Returns
    -------
    float
        PSNR in dB; ``inf`` when the (normalized) images are identical.

    Raises
    ------
    ValueError
        If shapes differ or the ground truth is constant.

    Examples
    --------
    >>> x = np.linspace(0, 1, 64).reshape(8, 8)
    >>> psnr(2 * x + 1, x)
    inf
    """
    from skimage.metrics import peak_signal_noise_ratio

    p, t, dr = _normalize_pair(pred, truth, normalize)
    if np.array_equal(p, t) or np.allclose(p, t, rtol=0, atol=1e-12 * dr):
        return float("inf")
    return float(peak_signal_noise_ratio(t, p, data_range=dr))


def nrmse(pred, truth, *, normalize="affine"):
    r"""Normalized RMS error ``sqrt(MSE) / data_range`` (0 = perfect).

    Parameters
    ----------
    pred, truth : array_like
        Prediction and ground truth of the same shape.
    {norm}

    Returns
    -------
    float
        The NRMSE (``10 ** (-psnr / 20)``).

    Raises
    ------
    ValueError
        If shapes differ or the ground truth is constant.

    Examples
    --------
    >>> nrmse(np.eye(4), np.eye(4))
    0.0
    """
    p, t, dr = _normalize_pair(pred, truth, normalize)
    return float(np.sqrt(np.mean((p - t) ** 2)) / dr)


def ssim(pred, truth, *, normalize="affine"):
    r"""Structural similarity (Wang et al. 2004) via scikit-image, averaged over YX planes.

    Computed per plane of the last two axes (7x7 window, ``data_range`` as below) and averaged,
    so stacks with few Z slices work and anisotropic voxels are not mixed.

    Parameters
    ----------
    pred, truth : array_like
        Prediction and ground truth of the same shape, Y and X last, each at least 7x7.
    {norm}

    Returns
    -------
    float
        Mean SSIM in [-1, 1]; 1 for identical (normalized) images.

    Raises
    ------
    ValueError
        If shapes differ, planes are smaller than 7x7, or the ground truth is constant.

    Examples
    --------
    >>> x = np.linspace(0, 1, 64).reshape(8, 8)
    >>> round(ssim(x, x), 6)
    1.0
    """
    from skimage.metrics import structural_similarity

    p, t, dr = _normalize_pair(pred, truth, normalize)
    if p.ndim < 2 or min(p.shape[-2:]) < 7:
        raise ValueError(f"ssim needs YX planes of at least 7x7 pixels (Y and X last), got shape {p.shape}")
    ny, nx = p.shape[-2:]
    vals = [structural_similarity(tp, pp, data_range=dr) for tp, pp in zip(t.reshape(-1, ny, nx), p.reshape(-1, ny, nx))]
    return float(np.mean(vals))


for _f in (psnr, nrmse, ssim):
    _f.__doc__ = _f.__doc__.replace("{norm}", _NORM_DOC)

