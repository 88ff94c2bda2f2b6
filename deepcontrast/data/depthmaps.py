"""Per-voxel depth for training data: ``surface='auto'`` or ``depth_map=`` of :class:`DegradedRawData`."""
import numpy as np

from ..depth import AUTO_SURFACES, resolve_depth
from ..internals.checks import check_surface

__all__ = ["DepthPlan"]


class DepthPlan:
    """How each image gets its depth: one number for all (today), its own map, or a map found in it.

    Parameters
    ----------
    surface : {'first', 'last', 'auto', 'auto-last'}
        As in :meth:`DegradedRawData.from_folder`.
    depth : float
        Depth of the surface-most slice (must be 0 with maps).
    depth_map : numpy.ndarray, list or None
        One map for every image, or a list of one map per image.
    n_images : int
        Number of images.
    subvolumes : bool
        Whether sub-volumes are drawn (not with maps).

    Raises
    ------
    ValueError
        For an unknown surface, a depth with maps, 'auto' with ``depth_map``, a list of maps
        of the wrong length, or maps with sub-volumes.
    """

    def __init__(self, surface, depth, depth_map, n_images, subvolumes=False):
        auto = surface in AUTO_SURFACES
        if not auto:
            check_surface(surface)
        self.end = AUTO_SURFACES.get(surface, surface)  # the end of Z the forward model is told
        self.auto, self.surface = auto, surface
        if auto and depth_map is not None:
            raise ValueError(f"surface={surface!r} finds the depth maps in the images; give either it or depth_map=, "
                             "not both")
        uses_maps = auto or depth_map is not None
        if uses_maps and depth != 0:
            raise ValueError(f"depth={depth:g} applies to a flat surface; with per-voxel depth (surface={surface!r}, "
                             "depth_map=) each voxel's depth comes from its map: leave depth at 0")
        if uses_maps and subvolumes:
            raise ValueError("sub-volumes (subvolume_size=) do not take per-voxel depth yet; drop subvolume_size or "
                             "use surface='first'/'last'")
        if isinstance(depth_map, (list, tuple)):
            if len(depth_map) != n_images:
                raise ValueError(f"depth_map is a list of {len(depth_map)} maps for {n_images} images; give one map "
                                 "per image, or one map for all")
            self.maps = list(depth_map)
        else:
            self.maps = None if depth_map is None else [depth_map] * n_images
        self.depth = depth

    def for_image(self, i, img, axes, voxel_size, offset=0.0):
        """The ``depth`` to degrade image ``i`` with: the number (plus the sub-volume's ``offset``),
        its map, or the map found in ``img``."""
        if self.auto:
            return resolve_depth(img, axes, voxel_size=voxel_size, surface=self.surface)[0]
        if self.maps is not None:
            return np.asarray(self.maps[i])
        return self.depth + offset

    def calibration_depth(self, n):
        """``depth`` and ``surface`` for calibrating on the first ``n`` images."""
        if self.maps is not None:
            return [np.asarray(m) for m in self.maps[:n]], self.end
        return self.depth, self.surface

    def record(self):
        """What the settings side file says about the depth maps (how they were made), or None."""
        if self.auto:
            return {"source": f"surface_depth(surface={self.end!r}) of each image", "surface": self.end}
        if self.maps is not None:
            return {"source": "given (depth_map=)", "n_maps": len({id(m) for m in self.maps}), "surface": self.end}
        return None
