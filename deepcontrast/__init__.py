"""deepcontrast: contrast restoration for deep-tissue fluorescence microscopy.

DeepContrast (Martins et al., arXiv 2308.08365) trains a CARE-style network to undo an
*extra* synthetic deep-tissue degradation applied to the raw images, then applies it to the
raw images themselves (optionally iteratively) to raise contrast where no ground truth exists.

The forward model, data generation and metrics import without TensorFlow; the model classes
(``DeepContrast``, ``Config``) are imported lazily on first access.
"""
from .version import __version__
from .degradation import DeepTissueDegradation

__all__ = [
    "__version__",
    "DeepTissueDegradation",
    "DegradedRawData",
    "synthetic_tissue",
    "Config",
    "DeepContrast",
]

_LAZY = {
    "DegradedRawData": "deepcontrast.data",
    "synthetic_tissue": "deepcontrast.data",
    "Config": "deepcontrast.models",
    "DeepContrast": "deepcontrast.models",
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'deepcontrast' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
