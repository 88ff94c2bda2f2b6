"""Training data from raw images alone, and the built-in sample.

* :class:`DegradedRawData`: a ``csbdeep.data.RawData`` yielding (degraded raw, raw) pairs
  made with the forward model; :func:`deep_tissue_distortions` is the same as a csbdeep
  ``Transform``.
* :func:`create_patches`: CSBDeep's ``create_patches`` that also saves the settings side file
  (:func:`settings_path`, :func:`load_settings`).
* :func:`synthetic_tissue`: a synthetic sample volume with known clean truth;
  :func:`synthetic_spheroid`: a curved one (an ellipsoid) with its true per-voxel depth.
* :func:`per_slice`: 2D training data from the planes of stacks, and
  :class:`SlicePercentileNormalizer` to normalize each plane on its own (TensorFlow-free).
"""
from .generate import DegradedRawData
from .patches import create_patches
from .settings import load_settings, save_settings, settings_path
from .normalize import SlicePercentileNormalizer
from .planes import per_slice
from .synthetic import synthetic_spheroid, synthetic_tissue
from .transform import deep_tissue_distortions

__all__ = [
    "per_slice",
    "SlicePercentileNormalizer",
    "DegradedRawData",
    "create_patches",
    "deep_tissue_distortions",
    "load_settings",
    "save_settings",
    "settings_path",
    "synthetic_tissue",
    "synthetic_spheroid",
]
