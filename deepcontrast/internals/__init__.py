"""Helpers shared across the package (not public API; names may change between versions).

- :mod:`.files`: atomic file output (respecting the umask) and JSON reading/writing;
- :mod:`.tiff`: TIFF reading and writing that keep axes, voxel size and unit, with errors that
  name the file;
- :mod:`.axes`: image/axes checks and moving axes (on top of ``csbdeep.utils``);
- :mod:`.checks`: checks of numeric arguments;
- :mod:`.model_folder`: checks of a CSBDeep/DeepContrast model folder.

Modelled on CSBDeep's ``csbdeep.internals`` / ``csbdeep.utils`` / ``csbdeep.io`` split; numpy,
scipy and tifffile only (no TensorFlow).
"""
