"""Train a 2D network on the XY slices of a stack.

For anisotropic stacks (Z steps of a few micrometres, pixels of a fraction of one) a 2D
network trained on XY slices learns in a fraction of the time a 3D network needs. The stack
is degraded in 3D (each slice at its own depth), patches of size ``(1, py, px)`` are cut, and
the singleton Z axis is dropped with :func:`squeeze_axis`. A 2D ``DeepContrast`` model
applies to a ``'ZYX'`` stack directly: Z is processed slice by slice, with one normalization
for the whole stack (as the training patches had).
"""
import numpy as np

__all__ = ["squeeze_axis"]


def squeeze_axis(X, Y, axes, axis="Z"):
    """Drop a singleton ``axis`` from training patches ``X``, ``Y`` with axes ``axes``.

    Parameters
    ----------
    X, Y : numpy.ndarray
        Patches as returned by ``create_patches`` (e.g. axes ``'SCZYX'`` with Z of size 1).
    axes : str
        Axes of ``X`` and ``Y``.
    axis : str
        The axis to drop.

    Returns
    -------
    X, Y : numpy.ndarray
        The patches without ``axis``.
    axes : str
        ``axes`` without ``axis``.

    Raises
    ------
    ValueError
        If ``axis`` is not in ``axes`` or is not of size 1.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((5, 1, 1, 8, 8))
    >>> squeeze_axis(X, X, 'SCZYX')[0].shape
    (5, 1, 8, 8)
    """
    if axis not in axes:
        raise ValueError(f"axis {axis!r} is not in the patch axes {axes!r}")
    i = axes.index(axis)
    if X.shape[i] != 1 or Y.shape[i] != 1:
        raise ValueError(
            f"axis {axis!r} of the patches has size {X.shape[i]}, not 1; cut patches with size 1 along {axis}, "
            "e.g. patch_size=(1, 64, 64)"
        )
    return np.take(X, 0, axis=i), np.take(Y, 0, axis=i), axes.replace(axis, "")
