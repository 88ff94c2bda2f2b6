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
from .contrast import CONTRAST_METRICS, contrast_profile, dcts, michelson_contrast, rms_contrast, weber_contrast
from .reference import detail_retention, nrmse, psnr, ssim
from .levels import BELOW_BG_NOISE_UNITS, background_noise, intensity_stats
from .tradeoff import image_metrics, iteration_tradeoff, suggest_n_iter

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
    "intensity_stats",
    "background_noise",
    "suggest_n_iter",
    "CONTRAST_METRICS",
]
