"""DeepContrast networks: configuration, training, (iterative) prediction with fast tiling.

Importing this package imports TensorFlow (through CSBDeep).
"""
from .config import Config, load_settings, settings_path
from .model import DeepContrast
from .normalize import FixedPercentileNormalizer, SlicePercentileNormalizer

__all__ = ["Config", "DeepContrast", "FixedPercentileNormalizer", "SlicePercentileNormalizer", "load_settings", "settings_path"]
