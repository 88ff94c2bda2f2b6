"""Former home of the axes helpers; they live in :mod:`deepcontrast.internals.axes` now."""
from .internals.axes import check_image_axes, spatial_voxel_size

__all__ = ["check_image_axes", "spatial_voxel_size"]
