"""Checks of numeric arguments and arrays, with messages that name the problem and the fix."""
import math

import numpy as np

__all__ = ["check_finite", "check_iterate", "check_number", "check_depth", "check_extra_depth", "check_surface"]


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
