"""DeepContrast networks: configuration, training, (iterative) prediction with fast tiling.

Importing this package imports TensorFlow (through CSBDeep).
"""
from .config import Config, load_settings, settings_path
from .model import DeepContrast

__all__ = ["Config", "DeepContrast", "load_settings", "settings_path"]
