"""Image/axes checks and axis moves (on top of ``csbdeep.utils``), numpy only."""
import numpy as np
from csbdeep.utils import axes_check_and_normalize, move_image_axes

__all__ = ["check_image_axes", "spatial_voxel_size", "axes_last", "yx_last", "to_planes"]


def check_image_axes(img, axes, *, name="image", allowed="STCZYX"):
    """Validate ``img`` against ``axes``; return ``(np.asarray(img), normalized_axes)``.

    Raises a ValueError naming the problem: unknown or repeated axes, a count that does not
    match ``img.ndim``, missing Y/X, a non-numeric dtype, or NaN/Inf values.
    """
    img = np.asarray(img)
    try:
        axes = axes_check_and_normalize(axes, disallowed="".join(set("STCZYX") - set(allowed)))
    except ValueError as e:
        raise ValueError(f"invalid axes {axes!r} for {name}: {e} Use letters from {allowed!r}, e.g. 'YX' or 'ZYX'.") from None
    if len(axes) != img.ndim:
        raise ValueError(
            f"axes {axes!r} do not match {name} with {img.ndim} dimensions {img.shape}; "
            f"give one letter per dimension, e.g. {_guess_axes(img.ndim)!r}"
        )
    if "Y" not in axes or "X" not in axes:
        raise ValueError(f"axes {axes!r} of {name} must contain both Y and X")
    if not (np.issubdtype(img.dtype, np.number) or img.dtype == bool) or np.iscomplexobj(img):
        raise ValueError(f"{name} must hold real numbers, got dtype {img.dtype}")
    if np.issubdtype(img.dtype, np.floating) and not np.all(np.isfinite(img)):
        n = int(np.size(img) - np.count_nonzero(np.isfinite(img)))
        raise ValueError(f"{name} contains {n} NaN/Inf values; replace them (e.g. np.nan_to_num) before processing")
    return img, axes


def spatial_voxel_size(axes, voxel_size):
    """Voxel size (um) per spatial axis of ``axes`` (Z, Y, X in their order); default 1."""
    spatial = [a for a in axes if a in "ZYX"]
    if voxel_size is None:
        return tuple(1.0 for _ in spatial)
    try:
        vs = tuple(float(v) for v in np.atleast_1d(voxel_size))
    except (TypeError, ValueError):
        raise ValueError(f"voxel_size must be numbers (um per pixel), got {voxel_size!r}") from None
    if len(vs) != len(spatial):
        raise ValueError(
            f"voxel_size {tuple(voxel_size) if np.ndim(voxel_size) else voxel_size} has {len(vs)} entries but axes "
            f"{axes!r} have {len(spatial)} spatial axes ({''.join(spatial)}); give one size in um per spatial axis"
        )
    if not all(np.isfinite(v) and v > 0 for v in vs):
        raise ValueError(f"voxel_size entries must be finite and > 0 um, got {vs}")
    return vs


def axes_last(img, axes, last, *, first=""):
    """Move the axes ``last`` (those of them in ``axes``, in that order) to the end.

    The one axis move of the package (on top of ``csbdeep.utils.move_image_axes``). The axes
    ``first`` (those of them in ``axes``) go to the front; the others keep their order between.
    With every axis of ``axes`` in ``first + last`` it is a full reorder, e.g. back to the
    original axes.

    Returns
    -------
    (moved, new_axes)

    Examples
    --------
    >>> axes_last(np.zeros((2, 3, 4)), 'YXZ', 'YX')[0].shape
    (4, 2, 3)
    >>> axes_last(np.zeros((2, 3, 4, 5)), 'CYZX', 'YX', first='Z')[1]
    'ZCYX'
    """
    head = "".join(a for a in first if a in axes)
    tail = "".join(a for a in last if a in axes and a not in head)
    order = head + "".join(a for a in axes if a not in head + tail) + tail
    return move_image_axes(img, axes, order), order


def yx_last(img, axes):
    """Check ``img`` against ``axes`` and move Y, X to the end: ``(moved, new_axes)``."""
    img, axes = check_image_axes(img, axes)
    return axes_last(img, axes, "YX")


def to_planes(img, axes, keep):
    """Reshape ``img`` to ``(n, *shape of keep)``, the axes ``keep`` last; return it and the inverse.

    Parameters
    ----------
    img : numpy.ndarray
    axes : str
        Axes of ``img``.
    keep : str
        Axes that stay (e.g. ``'YX'`` or ``'ZYX'``); those not in ``axes`` are ignored.

    Returns
    -------
    stack : numpy.ndarray
        ``(n, *kept)``: one entry per combination of the other axes.
    restore : callable
        Maps an array with the values of ``stack`` (same size, any shape) back to the shape
        and axes of ``img``.

    Examples
    --------
    >>> stack, restore = to_planes(np.zeros((2, 5, 6, 3)), 'ZYXC', 'YX')
    >>> stack.shape, restore(stack).shape
    ((6, 5, 6), (2, 5, 6, 3))
    """
    moved, order = axes_last(img, axes, keep)
    n_keep = sum(a in axes for a in keep)

    def restore(stack):
        return move_image_axes(np.reshape(stack, moved.shape), order, axes)

    return moved.reshape((-1,) + moved.shape[moved.ndim - n_keep:]), restore


def _guess_axes(ndim):
    return {2: "YX", 3: "ZYX", 4: "CZYX"}.get(ndim, "ZYX")
