"""No-reference contrast metrics and per-slice contrast profiles."""
import logging

import numpy as np
from scipy import fft as sfft

from ..internals.axes import axes_last, check_image_axes

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
    img, axes = check_image_axes(img, axes)
    img, axes = axes_last(img, axes, "YX", first="Z")
    slices = list(img) if "Z" in axes else [img]
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
