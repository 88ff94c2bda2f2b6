"""Export trained models for Fiji (CSBDeep plugin, TensorFlow 1.15) and bioimage.io.

- :func:`export_fiji`: CSBDeep's ``TF_SavedModel.zip`` format, frozen and cleaned so that
  TensorFlow 1.15 (the runtime of Fiji's CSBDeep plugin) loads it.
- :func:`export_bioimageio`: a bioimage.io model package (spec 0.5) for deepImageJ, ilastik,
  napari, QuPath (needs ``pip install "deepcontrast[bioimageio]"``).

Both work on a :class:`deepcontrast.DeepContrast` or any CSBDeep ``CARE`` model.
"""
from .bioimageio import export_bioimageio
from .fiji import export_fiji

__all__ = ["export_fiji", "export_bioimageio"]
