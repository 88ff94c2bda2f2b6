"""Training a 2D network on the planes of stacks: every plane becomes an image of its own."""
from csbdeep.data import RawData

__all__ = ["per_slice"]


def per_slice(raw_data, axis="Z"):
    """Turn a RawData of stacks into one whose images are the stacks' single planes.

    Each stack is still degraded as a whole (every plane at its own depth); only afterwards
    are the pairs split into planes. ``csbdeep.data.create_patches`` then normalizes every plane
    on its own percentiles, which is what a 2D network applied plane by plane with
    ``Config(normalize_per_slice=True)`` (:class:`~deepcontrast.models.SlicePercentileNormalizer`)
    sees at prediction time: deep, attenuated planes are not squeezed into a dim band of a
    stack-wide intensity range.

    Parameters
    ----------
    raw_data : csbdeep.data.RawData
        E.g. from :meth:`DegradedRawData.from_arrays` / :meth:`DegradedRawData.from_folder`
        with axes containing ``axis``. Its ``settings`` are carried over with
        ``'per_slice': axis`` added.
    axis : str
        The axis to split along (default ``'Z'``).

    Returns
    -------
    csbdeep.data.RawData
        Yields ``(degraded_plane, raw_plane, axes_without_axis, mask_plane)``; use a 2D
        ``patch_size`` with ``create_patches``.

    Raises
    ------
    ValueError
        If ``raw_data`` is not a DegradedRawData (the plane count must be known in advance) or
        its axes do not contain ``axis``.

    Examples
    --------
    >>> from deepcontrast import DeepTissueDegradation
    >>> from deepcontrast.data import DegradedRawData, per_slice, synthetic_tissue
    >>> stack, _ = synthetic_tissue((4, 64, 64))
    >>> planes = per_slice(DegradedRawData.from_arrays(stack, 'ZYX', DeepTissueDegradation(), 20.0))
    >>> x, y, axes, mask = next(planes.generator())
    >>> x.shape, axes
    ((64, 64), 'YX')
    """
    import numpy as np

    axis = str(axis).upper()

    def generator():
        for x, y, axes, mask in raw_data.generator():
            if axis not in axes:
                raise ValueError(f"images have axes {axes!r} without {axis!r}; per_slice needs stacks with that axis")
            k = axes.index(axis)
            for i in range(x.shape[k]):
                m = None if mask is None else np.take(mask, i, axis=k)
                yield np.take(x, i, axis=k), np.take(y, i, axis=k), axes.replace(axis, ""), m

    settings = getattr(raw_data, "settings", None)
    shapes = getattr(raw_data, "shapes", None)
    axes = (settings or {}).get("axes")
    if shapes is None or axes is None:
        raise ValueError("per_slice needs a DegradedRawData (from_arrays / from_folder), which knows the shapes of "
                         "its images; csbdeep's create_patches needs the exact number of planes in advance")
    if axis not in axes:
        raise ValueError(f"images have axes {axes!r} without {axis!r}; per_slice needs stacks with that axis")
    copies = raw_data.size // len(shapes)  # degraded copies per image
    size = copies * sum(int(shape[axes.index(axis)]) for shape in shapes)
    out = RawData(generator, size, f"{raw_data.description} (per {axis} plane)")
    return _WithSettings(out, dict(settings, per_slice=axis))


class _WithSettings(RawData):
    """A RawData that also carries ``settings`` (written next to the npz by create_patches)."""

    def __new__(cls, raw_data, settings):
        self = super().__new__(cls, *raw_data)
        self.settings = settings
        return self
