"""Where the tissue is, and how deep each voxel lies below its real surface (numpy/scipy only).

The forward model (:class:`deepcontrast.DeepTissueDegradation`) takes a depth per voxel;
:func:`surface_depth` makes one from a stack: for curved samples (embryos, organoids,
spheroids, larvae, cut organ pieces) the light reaching a voxel has crossed tissue whose
thickness depends on Y and X, not on Z alone.
"""
import logging

import numpy as np
from scipy import ndimage

from .internals.axes import axes_last, check_image_axes, spatial_voxel_size, to_planes
from .internals.checks import check_number, check_surface

__all__ = ["surface_depth", "find_tissue", "resolve_depth", "AUTO_SURFACES"]

#: ``surface`` values that find the tissue's own surface in the stack (:func:`resolve_depth`),
#: with the end of Z that faces the objective
AUTO_SURFACES = {"auto": "first", "auto-last": "last"}

#: Gaussian smoothing (um, every axis) of the stack before it is thresholded into tissue
TISSUE_SMOOTH = 2.0
#: threshold of the smoothed stack between the medium (0) and the bright tissue (1), as the
#: medians of the two classes Otsu's threshold splits it into: low, as deep tissue is dim
TISSUE_LEVEL = 0.25
#: lower threshold (same scale) down to which a column's tissue continues below the tissue found
#: (:func:`surface_depth`): deep tissue is dimmer than the surface's by its attenuation
DEEP_TISSUE_LEVEL = 0.1
#: Gaussian smoothing (um, Y and X) of the surface height
SURFACE_SMOOTH = 2.0
#: fraction of the Y, X columns whose tissue begins at the surface end of Z above which the
#: sample counts as filling the field (flat surface: exactly the slice depths)
FILLS_FIELD = 0.99
#: warn when the surface-end slice is tissue in at least this share of the columns that hold tissue
CUT_WARNING = 0.25

log = logging.getLogger(__name__)


def surface_depth(stack, axes, *, voxel_size=None, surface="first", mask=None, smooth=None):
    """Depth (um) of each voxel below the tissue surface, along the detection axis Z.

    The tissue is ``mask`` when given, otherwise found from the stack (:func:`find_tissue`),
    and continued down each column (away from the surface) as long as the smoothed stack stays
    above a lower threshold (:data:`DEEP_TISSUE_LEVEL`): deep tissue is dim, and without this
    the deepest part of a strongly attenuating sample would be taken for medium (depth 0).
    In each Y, X column the surface is the first tissue voxel from the ``surface`` end of Z;
    the surface height is smoothed over Y and X (Gaussian of ``smooth`` um, over the columns
    that hold tissue), and a tissue voxel's depth is its distance along Z below it. Outside
    the tissue the depth is 0. Where the sample fills the field (a given mask that is all
    tissue, or tissue found at the surface end of at least 99% of the columns) the surface is
    flat and the depths are exactly today's slice depths
    (:func:`deepcontrast.degradation.slice_depths` with ``depth=0``) in every voxel. Where
    the surface-end slice cuts through the tissue without filling the field (tissue there in
    at least 25% of the tissue's columns, e.g. the lower half of an embryo) a warning says that
    depths there are measured from that slice, so too shallow.

    Parameters
    ----------
    stack : numpy.ndarray
        Raw stack, any real dtype (with or without camera offset). Axes other than Z, Y, X
        (channels C, time T, samples S) are averaged to find the tissue.
    axes : str
        Axes of ``stack``, with Z, Y and X (e.g. ``'ZYX'``, ``'CZYX'``).
    voxel_size : sequence of float or None
        Micrometres per voxel for each spatial axis in the order they appear in ``axes``;
        default 1 for every axis.
    surface : {'first', 'last'}
        Which end of Z faces the objective (where the light enters the tissue).
    mask : numpy.ndarray of bool or None
        True inside the tissue, shaped like the spatial axes of ``stack`` in their order
        (e.g. from your own segmentation). ``None`` (default): found from the stack.
    smooth : float or None
        Lateral smoothing of the surface height in um (default :data:`SURFACE_SMOOTH`);
        0 keeps the surface of each column as found.

    Returns
    -------
    numpy.ndarray
        float64 depths in um, shaped like the spatial axes of ``stack`` in their order: what
        :meth:`deepcontrast.DeepTissueDegradation.__call__` and ``render`` take as ``depth``.

    Raises
    ------
    ValueError
        If ``axes`` lack Z or do not match ``stack``, ``surface`` is neither 'first' nor
        'last', ``mask`` has the wrong shape, is not boolean or is empty, or no tissue is
        found in the stack.

    Examples
    --------
    >>> import numpy as np
    >>> from deepcontrast.depth import surface_depth
    >>> mask = np.zeros((6, 32, 32), bool)
    >>> mask[2:, 8:24, 8:24] = True  # tissue from slice 2 down, in a square
    >>> depth = surface_depth(np.zeros(mask.shape), 'ZYX', voxel_size=(2, 0.5, 0.5), mask=mask)
    >>> depth[:, 16, 16]
    array([0., 0., 0., 2., 4., 6.])
    >>> float(depth[:, 0, 0].max())  # outside the tissue
    0.0

    A sample filling the field gets today's slice depths:

    >>> from deepcontrast.degradation import slice_depths
    >>> full = surface_depth(np.zeros((4, 8, 8)), 'ZYX', mask=np.ones((4, 8, 8), bool), surface='last')
    >>> bool(np.all(full == slice_depths(4, surface='last')[:, None, None]))
    True
    """
    stack, axes = check_image_axes(stack, axes, name="stack")
    if "Z" not in axes:
        raise ValueError(f"axes {axes!r} have no Z: surface_depth needs a stack (e.g. 'ZYX'); "
                         "for a single plane give its depth as a number instead")
    check_surface(surface)
    spatial = "".join(a for a in axes if a in "ZYX")
    size = dict(zip(spatial, spatial_voxel_size(axes, voxel_size)))
    smooth = SURFACE_SMOOTH if smooth is None else check_number(smooth, "smooth")
    if smooth < 0:
        raise ValueError(f"smooth must be >= 0 micrometres (0: no smoothing of the surface), got {smooth:g}")
    planes, _ = to_planes(stack, axes, "ZYX")
    vol = planes.mean(axis=0, dtype=np.float32) if len(planes) > 1 else planes[0].astype(np.float32)
    vs = (size["Z"], size["Y"], size["X"])

    deep = None
    if mask is None:
        tissue, deep = _find_tissue(vol, vs)
        end = np.count_nonzero(tissue[0 if surface == "first" else -1])
        fills = end >= FILLS_FIELD * tissue[0].size
        cut = end / max(1, np.count_nonzero(tissue.any(axis=0)))
        if not fills and cut >= CUT_WARNING:
            log.warning(
                "the stack's %s slice cuts through the tissue in %.0f%% of the columns that hold tissue: there the "
                "real surface lies outside the stack and depths are measured from that slice, so they are too "
                "shallow. Image from outside the sample, give the depth of that slice (depth=), or pass a depth "
                "map of your own", surface, 100 * cut)
        if fills:
            tissue[:] = True
            deep = None
    else:
        tissue = _check_mask(mask, stack.shape, axes, spatial)
    if surface == "last":
        tissue = tissue[::-1]
    if deep is not None:
        tissue = _continue_down(tissue, deep[::-1] if surface == "last" else deep)
    depth = _depth_below_surface(tissue, size["Z"], (smooth / size["Y"], smooth / size["X"]))
    if surface == "last":
        depth = depth[::-1]
    return np.ascontiguousarray(axes_last(depth, "ZYX", spatial)[0])


def resolve_depth(stack, axes, *, voxel_size=None, surface="first", depth=0.0):
    """The ``depth`` and ``surface`` to give the forward model, with ``surface='auto'`` resolved.

    ``surface='auto'`` (light entering at the first slice) or ``'auto-last'`` (at the last):
    the depth of each voxel below the tissue's own surface, found from ``stack`` by
    :func:`surface_depth` (a flat sample that fills the field gets exactly its slice depths);
    ``depth`` must then be 0. Any other ``surface`` passes ``depth`` and ``surface`` through.

    Parameters
    ----------
    stack : numpy.ndarray
        Raw stack with Z (for 'auto').
    axes : str
        Axes of ``stack``.
    voxel_size : sequence of float or None
        Micrometres per voxel for each spatial axis in the order of ``axes``.
    surface : {'first', 'last', 'auto', 'auto-last'}
        Which end of Z is the surface, or 'auto'/'auto-last' to find the surface.
    depth : float or numpy.ndarray
        Depth of the surface-most slice, or a per-voxel map (not with 'auto').

    Returns
    -------
    depth : float or numpy.ndarray
        A number, or a per-voxel map shaped like the spatial axes of ``stack``.
    surface : str
        'first' or 'last'.

    Raises
    ------
    ValueError
        If 'auto' is combined with a depth other than 0, or :func:`surface_depth` fails.

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.zeros((6, 32, 32)); stack[2:, 8:24, 8:24] = 1
    >>> dmap, surface = resolve_depth(stack, 'ZYX', surface='auto')
    >>> dmap.shape, surface
    ((6, 32, 32), 'first')
    """
    if surface not in AUTO_SURFACES:
        return depth, surface
    if np.ndim(depth) or depth != 0:
        raise ValueError(f"surface={surface!r} finds each voxel's depth from the stack: leave depth at 0 "
                         "(or give your own depth map with surface='first' or 'last')")
    end = AUTO_SURFACES[surface]
    return surface_depth(stack, axes, voxel_size=voxel_size, surface=end), end


def find_tissue(vol, voxel_size=(1.0, 1.0, 1.0)):
    """Boolean mask of the tissue in a ``(Z, Y, X)`` stack: smoothed, thresholded, filled.

    The stack is smoothed with a Gaussian of :data:`TISSUE_SMOOTH` um; Otsu's threshold
    splits the smoothed values into a dark class (the medium) and a bright one (tissue), and
    the tissue is what lies above a quarter of the way (:data:`TISSUE_LEVEL`) from the dark
    class's median to the bright one's, so that dim deep tissue counts. Holes are filled (in
    3D and in each plane) and the largest connected component is kept.

    Parameters
    ----------
    vol : numpy.ndarray
        ``(Z, Y, X)`` stack, any real dtype.
    voxel_size : sequence of float
        Micrometres per voxel, ``(Z, Y, X)``.

    Returns
    -------
    numpy.ndarray
        bool, shape of ``vol``.

    Raises
    ------
    ValueError
        If the stack is constant (nothing to tell tissue from medium).

    Examples
    --------
    >>> import numpy as np
    >>> vol = np.zeros((8, 32, 32)); vol[2:, 8:24, 8:24] = 1
    >>> tissue = find_tissue(vol)
    >>> bool(tissue[4, 16, 16]), bool(tissue[4, 2, 2])
    (True, False)
    """
    return _find_tissue(vol, voxel_size)[0]


def _find_tissue(vol, voxel_size):
    """:func:`find_tissue`'s mask, and where the smoothed stack lies above :data:`DEEP_TISSUE_LEVEL`."""
    vol = np.asarray(vol, np.float32)
    sm = ndimage.gaussian_filter(vol, [TISSUE_SMOOTH / v for v in voxel_size], mode="nearest")
    lo, hi = float(sm.min()), float(sm.max())
    if not hi > lo:
        raise ValueError("the stack is constant: no tissue to find; give the tissue as mask=")
    split = _otsu(sm)
    medium, bright = np.median(sm[sm <= split]), np.median(sm[sm > split])
    tissue = sm > medium + TISSUE_LEVEL * (bright - medium)
    deep = sm > medium + DEEP_TISSUE_LEVEL * (bright - medium)
    tissue = ndimage.binary_fill_holes(tissue)
    labels, n = ndimage.label(tissue)
    if n > 1:
        tissue = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    for k in range(len(tissue)):
        tissue[k] = ndimage.binary_fill_holes(tissue[k])
    # each column's tissue runs unbroken from its first to its last tissue voxel (dim pockets)
    tissue |= np.logical_or.accumulate(tissue, axis=0) & np.logical_or.accumulate(tissue[::-1], axis=0)[::-1]
    return tissue, deep


def _continue_down(tissue, deep):
    """``tissue`` (Z first, surface at slice 0) continued down each column through ``deep`` voxels."""
    out = tissue.copy()
    for k in range(1, len(out)):
        out[k] |= deep[k] & out[k - 1]
    return out


def _otsu(values, bins=256):
    """Otsu's threshold: the cut between two classes of values with the largest between-class variance."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)[:-1].astype(float)
    w1 = hist.sum() - w0
    s0 = np.cumsum(hist * centres)[:-1]
    m0 = s0 / np.maximum(w0, 1)
    m1 = (np.sum(hist * centres) - s0) / np.maximum(w1, 1)
    return float(edges[1:-1][np.argmax(w0 * w1 * (m0 - m1) ** 2)])


def _check_mask(mask, shape, axes, spatial):
    """The mask as bool ``(Z, Y, X)``; errors naming the problem and the fix."""
    mask = np.asarray(mask)
    want = tuple(n for n, a in zip(shape, axes) if a in "ZYX")
    if mask.shape != want:
        raise ValueError(f"mask of shape {mask.shape} does not match the spatial axes {spatial!r} of the stack "
                         f"{tuple(shape)} (axes {axes!r}); give one bool per voxel, shape {want}")
    if mask.dtype != bool:
        raise ValueError(f"mask must be boolean (True inside the tissue), got dtype {mask.dtype}; "
                         "e.g. mask=labels > 0")
    if not mask.any():
        raise ValueError("mask is empty (no voxel is True): mark the tissue True, "
                         "or pass mask=None to find the tissue from the stack")
    return axes_last(mask, spatial, "ZYX")[0].copy()


def _depth_below_surface(tissue, vsz, sigma_yx):
    """Depth (um) of each tissue voxel below the first tissue voxel of its column (Z first)."""
    n_z = tissue.shape[0]
    has = tissue.any(axis=0)
    top = np.argmax(tissue, axis=0).astype(float)  # first tissue voxel of each column
    ref = top[has].min()
    height = np.where(has, top - ref, 0.0)  # a flat surface is all zeros: smoothing keeps it exact
    if any(s > 0 for s in sigma_yx):
        weight = ndimage.gaussian_filter(has.astype(float), sigma_yx, mode="nearest")
        height = ndimage.gaussian_filter(height, sigma_yx, mode="nearest") / np.maximum(weight, 1e-12)
    k = np.arange(n_z, dtype=float)[:, None, None]
    depth = (k - (height + ref)[None]) * vsz
    return np.where(tissue, np.maximum(depth, 0.0), 0.0)
