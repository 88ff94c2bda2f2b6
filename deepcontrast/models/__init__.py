"""DeepContrast networks: configuration, training, (iterative) prediction with fast tiling.

Importing this package imports TensorFlow (through CSBDeep).
"""
from .config import Config, load_settings, settings_path
from .model import DeepContrast
from ..data.normalize import SlicePercentileNormalizer
from .normalize import FixedPercentileNormalizer

__all__ = ["Config", "DeepContrast", "FixedPercentileNormalizer", "SlicePercentileNormalizer", "load_settings", "settings_path"]
