"""Checks of numeric arguments and arrays, with messages that name the problem and the fix."""
import numpy as np

__all__ = ["check_finite", "check_iterate"]


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
