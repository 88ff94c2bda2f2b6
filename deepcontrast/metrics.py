r"""Contrast and detail metrics, per-depth profiles and the iteration trade-off (numpy/scipy/skimage only).

Three families:

* **no reference** (what you can measure on real deep-tissue data): :func:`rms_contrast`,
  :func:`michelson_contrast`, :func:`weber_contrast`, :func:`dcts` and, per Z slice,
  :func:`contrast_profile`;
* **detail**: :func:`detail_retention`, how much of the fine structure of one image survives
  in another;
* **with ground truth** (synthetic data, :func:`deepcontrast.data.synthetic_tissue`):
  :func:`psnr`, :func:`ssim`, :func:`nrmse`, with a stated normalization.

:func:`iteration_tradeoff` tabulates them for the iterates of a :class:`~deepcontrast.models.DeepContrast`
prediction and :func:`suggest_n_iter` picks the iteration at the balance point.

Degenerate inputs never produce a silent NaN: a constant image has contrast 0 (documented per
function), an empty mask or a non-positive mean raises a ValueError saying what to do.
"""
import logging

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi

__all__ = [
    "rms_contrast",
    "michelson_contrast",
    "weber_contrast",
    "dcts",
    "contrast_profile",
    "detail_retention",
    "psnr",
    "ssim",
    "nrmse",
    "iteration_tradeoff",
    "image_metrics",
    "suggest_n_iter",
    "CONTRAST_METRICS",
]

log = logging.getLogger(__name__)


def _values(img, mask=None, name="image"):
    img = np.asarray(img, dtype=np.float64)
    if img.size == 0:
        raise ValueError(f"{name} is empty (shape {img.shape}); pass an image with pixels")
    if not np.all(np.isfinite(img)):
        raise ValueError(f"{name} contains NaN/Inf values; replace them (e.g. np.nan_to_num) first")
    if mask is None:
        return img.ravel()
    mask = np.asarray(mask)
    if mask.shape != img.shape:
        raise ValueError(f"mask shape {mask.shape} does not match {name} shape {img.shape}; pass a boolean mask of the same shape")
    v = img[mask.astype(bool)]
    if v.size == 0:
        raise ValueError("mask selects no pixels; pass a mask with at least one True pixel (or mask=None for the whole image)")
    return v


def rms_contrast(img, mask=None):
    r"""RMS contrast ``C = std(I) / mean(I)`` over the image (or the pixels in ``mask``).

    Invariant to a global gain (attenuation), lowered by haze (an additive smooth background
    raises the mean) and by blur (lowers the standard deviation).

    Parameters
    ----------
    img : array_like
        Image of non-negative intensities (any dimensionality).
    mask : array_like of bool, optional
        Pixels to use (same shape as ``img``); default all.

    Returns
    -------
    float
        The RMS contrast; 0 for a constant image (including an all-zero one).

    Raises
    ------
    ValueError
        If the mask selects no pixels, or the mean intensity is <= 0 while the image is not
        constant (subtract less background, or add an offset so intensities are positive).

    Examples
    --------
    >>> rms_contrast([[0, 2], [0, 2]])
    1.0
    """
    v = _values(img, mask)
    std, mean = float(v.std()), float(v.mean())
    if std == 0:
        return 0.0
    if mean <= 0:
        raise ValueError(f"RMS contrast std/mean needs a positive mean intensity, got mean {mean:.4g}; "
                         "shift the image so background intensities are >= 0")
    return std / mean


def michelson_contrast(img, lower=1, upper=99, mask=None):
    r"""Percentile Michelson contrast ``C = (p_hi - p_lo) / (p_hi + p_lo)``.

    ``p_lo`` and ``p_hi`` are the ``lower`` and ``upper`` percentiles of the intensities
    (robust versions of min and max). In [0, 1] for non-negative images.

    Parameters
    ----------
    img : array_like
        Image of non-negative intensities.
    lower, upper : float
        Percentiles (0-100) standing in for the minimum and maximum.
    mask : array_like of bool, optional
        Pixels to use; default all.

    Returns
    -------
    float
        The contrast; 0 when ``p_hi == p_lo`` (e.g. a constant image).

    Raises
    ------
    ValueError
        If ``not 0 <= lower < upper <= 100``, the mask is empty, or ``p_hi + p_lo <= 0``.

    Examples
    --------
    >>> michelson_contrast([1, 1, 3, 3], lower=0, upper=100)
    0.5
    """
    if not 0 <= lower < upper <= 100:
        raise ValueError(f"need 0 <= lower < upper <= 100 (percentiles), got lower={lower}, upper={upper}")
    lo, hi = np.percentile(_values(img, mask), [lower, upper])
    if hi == lo:
        return 0.0
    if hi + lo <= 0:
        raise ValueError(f"Michelson contrast needs non-negative intensities, got percentiles {lo:.4g}..{hi:.4g}; "
                         "shift the image so background intensities are >= 0")
    return float((hi - lo) / (hi + lo))


def weber_contrast(img, mask=None):
    r"""Weber contrast ``C = (mean(I[fg]) - mean(I[bg])) / mean(I[bg])``.

    Parameters
    ----------
    img : array_like
        Image of non-negative intensities.
    mask : array_like of bool, optional
        Foreground mask (True = structure); the background is its complement. Default: Otsu's
        threshold, ``img > threshold_otsu(img)``.

    Returns
    -------
    float
        The contrast; 0 for a constant image (when ``mask`` is None).

    Raises
    ------
    ValueError
        If the mask selects no pixels or all pixels (no background), or the background mean
        is <= 0 (the ratio is then undefined: add an offset or use :func:`michelson_contrast`).

    Examples
    --------
    >>> weber_contrast([[1, 1], [3, 3]])
    2.0
    """
    img = np.asarray(img, dtype=np.float64)
    _values(img)
    if mask is None:
        if img.min() == img.max():
            return 0.0
        from skimage.filters import threshold_otsu

        mask = img > threshold_otsu(img)
    fg = _values(img, mask)
    mask = np.asarray(mask).astype(bool)
    if mask.all():
        raise ValueError("foreground mask covers every pixel, leaving no background; pass a mask with some False pixels")
    bg = img[~mask].mean()
    if bg <= 0:
        raise ValueError(f"Weber contrast needs a positive background mean, got {bg:.4g}; "
                         "add an offset or use michelson_contrast/rms_contrast")
    return float((fg.mean() - bg) / bg)


def dcts(img, cutoff=1.0):
    r"""Normalized DCT Shannon entropy, a no-reference sharpness measure (Royer et al. 2016).

    For each YX plane (last two axes): ``c = DCT(I) / ||DCT(I)||_2`` (orthonormal type-II
    DCT), keep the coefficients inside the triangle ``ky/ny + kx/nx < cutoff`` (the support
    ``x + y < r0`` of the original definition, in units of Nyquist), and compute

    .. math:: \mathrm{DCTS} = -\frac{1}{N} \sum_{k \in \text{support}} |c_k| \log_2 |c_k|

    with ``N`` the number of kept coefficients (the ``2 / r0^2`` normalization) and
    ``0 log 0 = 0``. Higher values = more energy spread into fine frequencies (sharper or
    noisier). Planes of a stack are averaged.

    Parameters
    ----------
    img : array_like
        Image with at least two dimensions (Y and X last).
    cutoff : float
        Support radius in units of Nyquist, in (0, 2]; default 1 (all frequencies up to Nyquist
        along the diagonal).

    Returns
    -------
    float
        The mean DCTS of the planes; 0 for a constant (or all-zero) plane.

    Raises
    ------
    ValueError
        If ``img`` has fewer than two dimensions or ``cutoff`` is out of range.

    Examples
    --------
    >>> dcts(np.ones((8, 8)))
    0.0
    """
    img = np.asarray(img, dtype=np.float64)
    if img.ndim < 2:
        raise ValueError(f"dcts needs an image with Y and X as its last two axes, got shape {img.shape}")
    if not 0 < cutoff <= 2:
        raise ValueError(f"cutoff must be in (0, 2] (units of Nyquist), got {cutoff}")
    _values(img)
    ny, nx = img.shape[-2:]
    support = (np.arange(ny)[:, None] / ny + np.arange(nx)[None, :] / nx) < cutoff
    planes = img.reshape(-1, ny, nx)
    out = []
    for p in planes:
        c = sfft.dctn(p, norm="ortho")
        norm = np.sqrt(np.sum(c**2))
        if norm == 0:
            out.append(0.0)
            continue
        a = np.abs(c[support]) / norm
        a = a[a > 0]
        out.append(float(-np.sum(a * np.log2(a)) / support.sum()))
    return float(np.mean(out))


#: contrast metrics by name, as used by :func:`contrast_profile` and :func:`iteration_tradeoff`
CONTRAST_METRICS = {
    "rms": rms_contrast,
    "michelson": michelson_contrast,
    "weber": weber_contrast,
    "dcts": dcts,
}


def _yx_last(img, axes):
    from ._axes import check_image_axes

    img, axes = check_image_axes(img, axes)
    order = [a for a in axes if a not in "YX"] + ["Y", "X"]
    return np.transpose(img, [axes.index(a) for a in order]), "".join(order)


def contrast_profile(img, axes, metric="rms", *, undefined="raise"):
    r"""One contrast value per Z slice, for contrast-vs-depth curves.

    Each slice (all non-Z axes, e.g. ``YX`` or ``CYX``) is measured with ``metric``.

    Parameters
    ----------
    img : array_like
        The image.
    axes : str
        Its axes, e.g. ``'ZYX'``; without Z the result has a single entry.
    metric : str or callable
        ``'rms'``, ``'michelson'``, ``'weber'``, ``'dcts'`` (see :data:`CONTRAST_METRICS`) or a
        function ``f(slice) -> float``.
    undefined : {'raise', 'nan'}
        What to do with a slice whose contrast is undefined (e.g. a negative mean for
        ``'rms'``): raise the ValueError (default) or record NaN and log a warning (for plots
        and reports, which show such slices as gaps).

    Returns
    -------
    numpy.ndarray
        float64 array of length ``n_z`` (slice order as in the image).

    Raises
    ------
    ValueError
        For an unknown metric or axes that do not match the image.

    Examples
    --------
    >>> contrast_profile(np.ones((3, 8, 8)), 'ZYX')
    array([0., 0., 0.])
    """
    f = CONTRAST_METRICS.get(metric) if isinstance(metric, str) else metric
    if not callable(f):
        raise ValueError(f"unknown contrast metric {metric!r}; use one of {sorted(CONTRAST_METRICS)} or a function")
    if undefined not in ("raise", "nan"):
        raise ValueError(f"undefined must be 'raise' or 'nan', got {undefined!r}")
    img, axes = _yx_last(img, axes)
    slices = [img] if "Z" not in axes else list(np.moveaxis(img, axes.index("Z"), 0))
    out = np.empty(len(slices), dtype=np.float64)
    for k, sl in enumerate(slices):
        try:
            out[k] = f(sl)
        except ValueError as e:
            if undefined == "raise":
                raise
            log.warning("contrast of slice %d undefined (recorded as NaN): %s", k, e)
            out[k] = np.nan
    return out


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


# --------------------------------------------------------------------------- trade-off
def iteration_tradeoff(raw, iterates, *, mask=None, ground_truth=None, normalize="affine", band=(1.0, 4.0)):
    r"""Contrast gained and detail kept by each iteration, as a table (list of dicts).

    Row 0 is the raw image, row ``k`` the ``k``-th iterate. Each row holds

    * ``rms_contrast``, ``michelson_contrast``, ``weber_contrast`` (Otsu foreground), computed
      on the pixels inside ``mask`` when given, and ``dcts`` (whole image). Negative
      intensities (network undershoot below the background) are clipped to 0 first: the
      contrast ratios are defined for non-negative intensities and would otherwise blow up as
      a restored image's mean approaches 0;
    * ``contrast_gain = rms_contrast(iterate) / rms_contrast(raw)`` (1 for the raw);
    * ``detail_retention = detail_retention(raw, iterate, band)`` (1 for the raw);
    * with ``ground_truth``: ``psnr``, ``ssim``, ``nrmse`` (see :func:`psnr`).

    A metric that is undefined for an image (e.g. RMS contrast of an image with a negative
    mean) is ``None`` and a warning is logged, never NaN.

    Parameters
    ----------
    raw : array_like
        The raw image (Y and X last).
    iterates : sequence of array_like
        The iterates, each of the raw's shape.
    mask : array_like of bool, optional
        Region of interest (e.g. the deepest slices) for the contrast metrics.
    ground_truth : array_like, optional
        Clean image of the raw's shape.
    normalize : {'affine', 'percentile', None}
        Normalization for the ground-truth metrics.
    band : (float, float)
        Band (px) of :func:`detail_retention`.

    Returns
    -------
    list of dict
        One row per image (``iteration`` 0 = raw), values plain Python floats or None.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> raw = 1 + rng.random((16, 16))
    >>> rows = iteration_tradeoff(raw, [raw, raw])
    >>> [r['contrast_gain'] for r in rows]
    [1.0, 1.0, 1.0]
    """
    raw = np.asarray(raw)
    images = [raw] + [np.asarray(x) for x in iterates]
    for k, x in enumerate(images[1:], 1):
        if x.shape != raw.shape:
            raise ValueError(f"iterate {k} has shape {x.shape} but the raw image has shape {raw.shape}; they must match")
    rows = []
    for k, x in enumerate(images):
        row = {"iteration": k}
        row.update(image_metrics(x, raw, mask=mask, ground_truth=ground_truth, normalize=normalize, band=band))
        rows.append(row)
    return rows


def image_metrics(img, raw, *, mask=None, ground_truth=None, normalize="affine", band=(1.0, 4.0), raw_rms=None):
    """The metrics of one row of :func:`iteration_tradeoff`: ``img`` measured against ``raw``.

    Parameters
    ----------
    img, raw : array_like
        The image to measure and the raw image it came from (same shape, Y and X last).
    mask, ground_truth, normalize, band
        As in :func:`iteration_tradeoff`.
    raw_rms : float, optional
        RMS contrast of the raw (within ``mask``), if already known.

    Returns
    -------
    dict
        ``rms_contrast``, ``michelson_contrast``, ``weber_contrast``, ``dcts``,
        ``contrast_gain``, ``detail_retention`` and, with ``ground_truth``, ``psnr``, ``ssim``,
        ``nrmse``; undefined values are None (with a logged warning).

    Raises
    ------
    ValueError
        If ``mask`` selects no pixels.

    Examples
    --------
    >>> x = 1 + np.random.default_rng(0).random((16, 16))
    >>> image_metrics(x, x)['detail_retention']
    1.0
    """

    def safe(name, f, *a, **kw):
        try:
            return float(f(*a, **kw))
        except ValueError as e:
            log.warning("%s undefined: %s", name, e)
            return None

    pos = np.maximum(np.asarray(img, np.float64), 0)  # intensities are photon counts: undershoot -> 0
    v = pos if mask is None else pos[np.asarray(mask, bool)]
    if v.size == 0:
        raise ValueError("mask selects no pixels; pass a mask with at least one True pixel (or mask=None)")
    out = {
        "rms_contrast": safe("rms_contrast", rms_contrast, v),
        "michelson_contrast": safe("michelson_contrast", michelson_contrast, v),
        "weber_contrast": safe("weber_contrast", weber_contrast, v),
        "dcts": safe("dcts", dcts, img),
    }
    raw_pos = np.maximum(np.asarray(raw, np.float64), 0)
    base = raw_rms if raw_rms is not None else safe("rms_contrast", rms_contrast, raw_pos, mask)
    out["contrast_gain"] = out["rms_contrast"] / base if base and out["rms_contrast"] is not None else None
    out["detail_retention"] = safe("detail_retention", detail_retention, raw, img, band)
    if ground_truth is not None:
        for name, f in (("psnr", psnr), ("ssim", ssim), ("nrmse", nrmse)):
            out[name] = safe(name, f, img, ground_truth, normalize=normalize)
    return out


def suggest_n_iter(table, *, min_retention=0.97, min_gain_step=0.02):
    r"""Pick the number of iterations at the balance of contrast gained and detail lost.

    Rule: the largest ``k >= 1`` such that every iteration ``j = 1..k`` both keeps enough
    detail, ``detail_retention_j >= min_retention``, and still raises contrast,
    ``contrast_gain_j >= (1 + min_gain_step) * contrast_gain_{j-1}``. Iteration 1 is returned
    when even it fails (one pass is the method's intended use; look at the table). Ground
    truth, when present, is deliberately not used: real data has none.

    Parameters
    ----------
    table : list of dict
        Output of :func:`iteration_tradeoff` (row 0 = raw).
    min_retention : float
        Lowest acceptable detail retention, in [0, 1]. The default 0.97 is a heuristic set on
        the built-in sample (:func:`deepcontrast.data.synthetic_tissue`), where PSNR against
        the clean truth peaked at the last iteration with retention above it; lower it to
        accept more detail loss for more contrast.
    min_gain_step : float
        Lowest relative contrast increase per iteration worth taking.

    Returns
    -------
    int
        The suggested number of iterations (>= 1).

    Raises
    ------
    ValueError
        If the table has no iterate rows.

    Examples
    --------
    >>> t = [dict(contrast_gain=1, detail_retention=1), dict(contrast_gain=1.5, detail_retention=.99),
    ...      dict(contrast_gain=1.8, detail_retention=.98), dict(contrast_gain=2, detail_retention=.9)]
    >>> suggest_n_iter(t)
    2
    """
    if len(table) < 2:
        raise ValueError("the table needs the raw row and at least one iterate row (see iteration_tradeoff)")
    best = 1
    for k in range(1, len(table)):
        g, g0, r = table[k].get("contrast_gain"), table[k - 1].get("contrast_gain"), table[k].get("detail_retention")
        if g is None or g0 is None or r is None or r < min_retention or g < (1 + min_gain_step) * g0:
            break
        best = k
    return best
