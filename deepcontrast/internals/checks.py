"""Checks of numeric arguments and arrays, with messages that name the problem and the fix."""
import math

import numpy as np

from .axes import axes_last

__all__ = ["check_finite", "check_iterate", "check_number", "check_depth", "check_extra_depth", "check_surface",
           "check_depth_arg"]


def check_finite(arr, name):
    """Raise a ValueError naming ``name`` when ``arr`` holds NaN or Inf values."""
    arr = np.asarray(arr)
    if np.issubdtype(arr.dtype, np.floating) or np.iscomplexobj(arr):
        n_bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if n_bad:
            raise ValueError(f"{name} contains {n_bad} NaN/Inf values; remove or repair them "
                             "(e.g. np.nan_to_num) before using it")
    return arr


def check_iterate(y, bound, k):
    """Raise a ValueError when iterate ``k`` is non-finite or leaves ``[-bound, bound]``.

    Parameters
    ----------
    y : numpy.ndarray
        The iterate (in the network's normalized space).
    bound : float
        Largest sane absolute value, e.g. a multiple of the normalized raw image's range.
    k : int
        Iteration number (1-based), for the message.
    """
    peak = float(np.max(np.abs(y))) if np.size(y) else 0.0
    if not np.isfinite(peak) or peak > bound:
        what = "NaN/Inf values" if not np.isfinite(peak) else f"values up to {peak:.3g} (bound {bound:.3g})"
        raise ValueError(f"iteration {k} diverged: {what}; the network amplifies its own output. "
                         f"Use fewer iterations (n_iter < {k}) or retrain the model")
    return y


def check_number(v, name, unit="micrometres", *, allow_inf=False):
    """``float(v)``; a ValueError naming ``name`` (and ``unit``) for a non-number, NaN or Inf.

    ``allow_inf`` lets ``inf`` through (e.g. a length that disables a term); ``unit=None``
    leaves the unit out of the message.
    """
    what = f" ({unit})" if unit else ""
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number{what}, got {v!r}") from None
    if math.isnan(f) or (math.isinf(f) and not allow_inf):
        raise ValueError(f"{name} must be a finite number{what}, got {v!r}")
    return f


def check_depth(depth):
    """Depth in micrometres below the surface: a finite number >= 0."""
    depth = check_number(depth, "depth")
    if depth < 0:
        raise ValueError(f"depth must be >= 0 micrometres (0 is the tissue surface), got {depth:g}")
    return depth


def check_surface(surface):
    """Which end of Z is the tissue surface: 'first' or 'last'."""
    if surface not in ("first", "last"):
        raise ValueError(f"surface must be 'first' or 'last' (which end of Z is the tissue surface), got {surface!r}")
    return surface


def check_extra_depth(extra_depth):
    """``(low, high)`` in um from a number or a range; errors for empty/inverted/negative ones."""
    if np.ndim(extra_depth) == 0:
        lo = hi = check_number(extra_depth, "extra_depth")
    else:
        vals = list(np.ravel(extra_depth)) if not isinstance(extra_depth, (list, tuple)) else list(extra_depth)
        if len(vals) != 2:
            raise ValueError(
                f"extra_depth must be a number or a (low, high) range in micrometres, got {extra_depth!r} "
                f"with {len(vals)} entries; e.g. extra_depth=(10, 40)"
            )
        lo = check_number(vals[0], "extra_depth low")
        hi = check_number(vals[1], "extra_depth high")
        if lo > hi:
            raise ValueError(
                f"extra_depth range ({lo:g}, {hi:g}) is inverted (low > high); give it as (low, high), "
                f"e.g. ({hi:g}, {lo:g})"
            )
    if lo < 0:
        raise ValueError(f"extra_depth must be >= 0 micrometres (deeper, not shallower), got {extra_depth!r}")
    return lo, hi


def check_depth_arg(depth, shape, axes):
    """``depth`` as a number (>= 0 um) or as a per-voxel map in Z, Y, X order.

    A map has the shape of the image's spatial axes in the order they appear in ``axes``
    (``(Y, X)`` for a plane, ``(Z, Y, X)`` for a ``'ZYX'`` stack, also for ``'CZYX'``); it is
    returned as a float ``(Z, Y, X)`` array (a view where it can be), ``Z = 1`` for a plane.
    """
    if np.ndim(depth) == 0:
        return check_depth(depth)
    dmap = np.asarray(depth)
    spatial = "".join(a for a in axes if a in "ZYX")
    want = tuple(n for n, a in zip(shape, axes) if a in "ZYX")
    if dmap.shape != want:
        raise ValueError(
            f"depth map of shape {dmap.shape} does not match the spatial axes {spatial!r} of the image "
            f"{tuple(shape)} (axes {axes!r}); give one depth (um) per voxel, shape {want}, or one number"
        )
    if not np.issubdtype(dmap.dtype, np.number) or np.iscomplexobj(dmap):
        raise ValueError(f"depth map must hold real numbers (micrometres), got dtype {dmap.dtype}")
    if not np.issubdtype(dmap.dtype, np.floating):
        dmap = dmap.astype(np.float64)
    lo, hi = (float(dmap.min()), float(dmap.max())) if dmap.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # NaN propagates into min and max
        n_bad = int(dmap.size - np.count_nonzero(np.isfinite(dmap)))
        raise ValueError(f"depth map contains {n_bad} NaN/Inf values; give a finite depth (um) for every "
                         "voxel (0 outside the tissue, e.g. from deepcontrast.depth.surface_depth)")
    if lo < 0:
        raise ValueError(f"depth map must be >= 0 micrometres (0 is the tissue surface), got values down to "
                         f"{lo:g} in {int(np.count_nonzero(dmap < 0))} voxels; clip them (np.clip(depth, 0, None))")
    dmap, _ = axes_last(dmap, spatial, "ZYX")
    return dmap if "Z" in spatial else dmap[None]
