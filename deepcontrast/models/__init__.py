"""DeepContrast networks: configuration, training, (iterative) prediction with fast tiling.

Importing this package imports TensorFlow (through CSBDeep).
"""
from .config import Config, load_settings, settings_path
from .model import DeepContrast
from ..data.normalize import SlicePercentileNormalizer

__all__ = ["Config", "DeepContrast", "SlicePercentileNormalizer", "load_settings", "settings_path"]
