"""Re-export: :class:`SlicePercentileNormalizer` lives in :mod:`deepcontrast.data.normalize` (no TensorFlow)."""
from ..data.normalize import SlicePercentileNormalizer

__all__ = ["SlicePercentileNormalizer"]
