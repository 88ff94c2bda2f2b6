"""Restored depth and noise-normalized residual of each iterate against the raw data (numpy/scipy only).

If iterate ``k`` restores plane ``z`` "as if imaged ``D`` micrometres shallower", the noise-free
forward model taking it from depth ``z - D`` back down to ``z`` must give the raw plane within
the raw's noise. :func:`check_consistency` finds ``D`` per plane and reports the residual in
units of the noise (the discrepancy principle of inverse problems); see the module docstring of
:mod:`deepcontrast.consistency` for the method and its measured behaviour.
"""
import logging
import time
import warnings

import numpy as np
from scipy import ndimage as ndi

from ..degradation import DeepTissueDegradation, slice_depths
from ..internals.axes import axes_last, check_image_axes, spatial_voxel_size
from ..internals.checks import check_number, check_surface
from .report import ConsistencyReport
from .search import SEARCH_SIZE, _constants, _fit, _minimize, _Search, search_crop

__all__ = ["check_consistency"]

log = logging.getLogger(__name__)

#: default spacing (um) of the depth grid on which the forward model runs
STEP = 5.0
#: the grid reaches this far (um) beyond the deepest plane: restoration past the surface shows
MARGIN = 25.0
#: lateral smoothing (px) of the raw before it gives the Poisson variance (see the package docstring)
VARIANCE_SMOOTHING = 1.0


def check_consistency(raw, iterates, axes, degradation, *, voxel_size=None, surface="first", depth=0.0,
                      max_depth=None, step=None, search_size=SEARCH_SIZE):
    """How much depth each iterate restored per plane, and whether the raw data support it.

    For every iterate ``k`` and plane ``z`` (at depth ``z_um`` below the surface) the iterate is
    pushed from depth ``z_um - D`` back down to ``z_um`` with the noise-free forward model
    (``degradation`` with ``photons=None, read_noise=0``), a gain and an offset are fitted to the
    raw plane by weighted least squares (weights 1 / noise variance), and ``D`` is chosen to
    minimize the residual. ``D`` runs on a grid (every ``step`` um, one forward pass per grid
    point); between grid points the forward model is interpolated linearly, so ``D`` is
    continuous (to ~``step / 20`` um, refined by a parabola). The search runs on a central crop
    of ``search_size`` px per lateral axis (the forward model acts alike everywhere in a plane,
    so a crop of 16k pixels holds the depth about as well as the whole plane: the deep planes'
    restored depths of trained networks' iterates moved by at most 1.5 um); chi2, gain and offset are then fitted on the whole plane, pushed down by
    its own ``D`` in one more pass. So the check of a 1024 x 1024 stack costs about what one
    of 256 x 256 costs, well under one prediction pass.

    Parameters
    ----------
    raw : numpy.ndarray
        The raw image, axes ``axes`` (only Z, Y, X, in any order: split channels and time
        points off first).
    iterates : sequence of numpy.ndarray or numpy.ndarray
        The restorations, each of the raw's shape and axes (``[model.predict(raw, axes, n_iter=k)
        for k in (1, 2, 3)]``, or one array with the iterates along a new first axis).
    axes : str
        Axes of ``raw``, e.g. ``'YX'``, ``'ZYX'``, ``'YXZ'``.
    degradation : DeepTissueDegradation or 'auto'
        The forward model (the one the network was trained with). Its noise (``photons``,
        ``read_noise``, ``background``) gives the raw's noise variance,
        ``(raw - background) / photons + read_noise**2``; without noise the variance comes from
        a mean-variance fit of the raw itself (:func:`deepcontrast.calibration.fit_noise`) and the
        report says so. ``'auto'`` calibrates the model from the raw
        (:meth:`DeepTissueDegradation.calibrate`).
    voxel_size : sequence of float or None
        Micrometres per pixel per spatial axis in the order of ``axes``; default 1.
    surface : {'first', 'last'}
        Which end of Z is the tissue surface.
    depth : float or numpy.ndarray
        Depth (um) of the surface-most plane (of the plane, for 2D images), or one depth per
        voxel, shaped like ``raw`` (e.g. from :func:`deepcontrast.depth.surface_depth`). With a
        map, a plane holding at least :data:`MIN_TISSUE_PX` tissue voxels (depth > 0) is compared
        on its tissue alone (the medium around a curved sample has nothing to restore, and its
        zero residuals would pull chi2 down), and a plane's depth is the median over its tissue.
    max_depth : float or None
        Deepest restored depth tried (um); default the deepest plane's depth + 25 um.
    step : float or None
        Grid spacing (um); default 5 (finer when ``max_depth`` is under 40 um: at least 9 points).
    search_size : int or None
        Lateral size (px) of the central crop each plane's depth is searched on (default 128);
        ``None`` searches the whole plane.

    Returns
    -------
    ConsistencyReport
        ``restored_depth`` and ``chi2``, both ``(n_iter, Z)`` (``Z = 1`` for 2D images),
        ``residual_map(k)``, ``summary()``, ``to_table()``, ``to_dict()``, ``figure()``.

    Raises
    ------
    ValueError
        If the axes do not match the raw or hold S, T or C, an iterate has another shape or
        holds NaN/Inf, no iterate is given, ``depth`` is malformed, or ``degradation`` is not a
        DeepTissueDegradation or 'auto' (or the raw has no noise to measure it by).

    Examples
    --------
    >>> from deepcontrast import DeepTissueDegradation
    >>> from deepcontrast.data import synthetic_tissue
    >>> deg = DeepTissueDegradation(photons=50)
    >>> raw, clean = synthetic_tissue((8, 64, 64), degradation=deg, rng=1)
    >>> report = check_consistency(raw, [clean], 'ZYX', deg, voxel_size=(2, .5, .5))
    >>> report.restored_depth.shape, report.chi2.shape
    ((1, 8), (1, 8))
    """
    t0 = time.perf_counter()
    raw, axes, raw_zyx, order = _check_raw(raw, axes)
    its = _check_iterates(iterates, raw, axes, order)
    check_surface(surface)
    size = dict(zip([a for a in axes if a in "ZYX"], spatial_voxel_size(axes, voxel_size)))
    vs = tuple(size[a] for a in "ZYX" if a in size)
    has_z = "Z" in axes
    start_map, plane_depth, depth_given = _depths(depth, raw, axes, order, vs, surface)
    deg, noise = _models(degradation, raw, axes, voxel_size, surface, depth)
    var = noise_variance(raw_zyx, noise)
    grid = _grid(plane_depth, start_map, max_depth, step)
    fwd = deg.replace(photons=None, read_noise=0.0)

    w = (1.0 / var).astype(np.float32)
    if start_map.ndim == 3:  # a curved sample: only its tissue (depth > 0) is compared, not the medium around it
        planes = tissue_planes(start_map)
        w[planes] *= start_map[planes] > 0
    y = raw_zyx.astype(np.float32, copy=False)
    consts = _constants(w, y)
    sub, w_c, y_c = search_crop(w, y, search_size)
    search = _Search(fwd, start_map if start_map.ndim == 1 else np.ascontiguousarray(start_map[sub]), vs, has_z, grid)
    whole = _Search(fwd, start_map, vs, has_z, grid)
    rd, c2, gain, offset, where = [], [], [], [], []
    consts_c = _constants(w_c, y_c)
    for it in its:
        it_c = np.ascontiguousarray(it[sub])
        if search.start.ndim == 1:  # one depth per plane: each plane pushed by its own depth, bracket by bracket
            d, pos = search.bracket(it_c, w_c, y_c, consts_c), None
        else:  # a depth per voxel: the whole grid, interpolated between grid depths
            d, _, _, _, pos = _minimize(grid, search.statistics(it_c, w_c, y_c), consts_c)
        c, g, o = _fit(whole.pushed(it, d, pos), w, y, consts)
        rd.append(d), c2.append(c), gain.append(g), offset.append(o), where.append(pos)
    notes = []
    at_edge = np.asarray(rd) >= grid[-1] - 1e-9
    if at_edge.any() and grid[-1] > 0:
        notes.append(f"{int(at_edge.sum())} plane(s) reached the deepest depth tried ({grid[-1]:g} um): "
                     "raise max_depth to see how far they were restored")
    blind = _depth_blind(fwd, vs, grid, plane_depth)
    if blind:
        notes.append(blind)
    report = ConsistencyReport(
        restored_depth=np.asarray(rd), chi2=np.asarray(c2), gain=np.asarray(gain), offset=np.asarray(offset),
        plane_depth=plane_depth, grid=grid, noise=noise, degradation=deg, notes=notes,
        inputs={"axes": axes, "shape": list(raw.shape), "voxel_size": list(size.values()), "surface": surface,
                "depth": depth_given, "n_iter": len(its)},
        cost={"seconds": time.perf_counter() - t0, "forward_passes": search.calls + whole.calls, "grid_points": len(grid),
              "search_px": [int(n) for n in y_c.shape[1:]]},
        measurable=blind is None,
        _state={"raw": raw_zyx, "iterates": its, "var": var, "search": whole, "where": where, "order": order})
    log.info("consistency:\n%s", report.summary())
    return report


def noise_variance(raw_zyx, noise):
    """Noise variance per voxel of a ``(Z, Y, X)`` raw: ``(smoothed raw - background) / photons + read_noise**2``.

    The raw is smoothed laterally (Gaussian, :data:`VARIANCE_SMOOTHING` px) first: a variance
    taken from the noisy pixel itself is larger where the noise happens to be positive, which
    biased chi2 of a perfect restoration up by 10-20% (measured on ``synthetic_tissue`` at 50
    photons). A floor of one photon (``1 / photons**2``) keeps dark voxels finite.
    """
    photons, read = noise["photons"], float(noise["read_noise"] or 0.0)
    var = np.full(raw_zyx.shape, read**2, np.float32)
    if photons is not None:
        sm = ndi.gaussian_filter(raw_zyx.astype(np.float32), (0, VARIANCE_SMOOTHING, VARIANCE_SMOOTHING), mode="reflect")
        sm -= np.float32(noise["background"])
        np.maximum(sm, 1.0 / photons, out=sm)  # at least one photon
        var += sm / np.float32(photons)
    return var


def _depth_blind(fwd, vs, grid, plane_depth):
    """A note when the forward model adds no depth-dependent blur or haze even over the deepest push tried, else None."""
    from ..calibration.notice import nothing_to_restore_notice

    if grid[-1] <= 0 or nothing_to_restore_notice(fwd, vs, grid[-1], float(np.median(plane_depth))) is None:
        return None
    scat = "None" if fwd.scattering_length is None else f"{fwd.scattering_length:g} um"
    return (f"restored depth is not measurable: the forward model adds no depth-dependent blur or haze over "
            f"{grid[-1]:g} um (blur_rate {fwd.blur_rate:.2g}, scattering_length {scat}), so every depth explains the "
            "raw equally well: no restoration happened (see deepcontrast.calibration.nothing_to_restore_notice)")


# -- checks -------------------------------------------------------------------------------------
def _check_raw(raw, axes):
    raw, axes = check_image_axes(raw, axes, name="raw image")
    extra = [a for a in axes if a not in "ZYX"]
    if extra:
        raise ValueError(
            f"check_consistency compares one image of Z, Y, X; axes {axes!r} also hold {''.join(extra)!r}. "
            f"Check each channel/time point on its own, e.g. raw[{', '.join(':' if a in 'ZYX' else '0' for a in axes)}]"
        )
    if raw.size == 0:
        raise ValueError(f"raw image is empty (shape {raw.shape}); give an image with pixels")
    moved, order = axes_last(raw, axes, "ZYX")
    zyx = moved if "Z" in axes else moved[None]
    return raw, axes, np.ascontiguousarray(zyx, dtype=np.float32), order


def _check_iterates(iterates, raw, axes, order):
    if isinstance(iterates, np.ndarray):
        if iterates.shape == raw.shape:
            iterates = [iterates]
        elif iterates.ndim == raw.ndim + 1 and iterates.shape[1:] == raw.shape:
            iterates = list(iterates)
        else:
            raise ValueError(
                f"iterates of shape {iterates.shape} match neither the raw image {raw.shape} (one iterate) nor "
                f"{('n',) + raw.shape} (iterates along a new first axis); give a list of arrays of the raw's shape "
                f"and axes {axes!r}")
    elif not isinstance(iterates, (list, tuple)):
        raise ValueError(f"iterates must be a list of arrays (one per iteration), got {type(iterates).__name__}")
    if len(iterates) == 0:
        raise ValueError("no iterates given; pass a non-empty list, e.g. [model.predict(raw, axes, n_iter=k) "
                         "for k in (1, 2, 3)]")
    out = []
    for k, it in enumerate(iterates, 1):
        it = np.asarray(it)
        if it.shape != raw.shape:
            raise ValueError(
                f"iterate {k} has shape {it.shape} but the raw image has {raw.shape} (axes {axes!r}); give every "
                "iterate in the raw's shape and axes order (e.g. np.moveaxis it, or predict with the same axes)")
        it, _ = check_image_axes(it, axes, name=f"iterate {k}")
        moved = axes_last(it, axes, "ZYX")[0]
        out.append(np.ascontiguousarray(moved if "Z" in axes else moved[None], dtype=np.float32))
    return out


def _depths(depth, raw, axes, order, vs, surface):
    """(start depth: (Z,) per plane or (Z, Y, X) per voxel, (Z,) plane depths, JSON-safe description)."""
    n_z = raw.shape[axes.index("Z")] if "Z" in axes else 1
    if np.ndim(depth) == 0:
        d = check_number(depth, "depth")
        if d < 0:
            raise ValueError(f"depth must be >= 0 micrometres (0 is the tissue surface), got {d:g}")
        z = slice_depths(n_z, depth=d, voxel_size_z=vs[0], surface=surface) if "Z" in axes else np.array([d])
        return z, z, d
    dmap = np.asarray(depth)
    if dmap.shape != raw.shape:
        raise ValueError(f"depth map of shape {dmap.shape} does not match the raw image {raw.shape} (axes {axes!r}); "
                         "give one depth (um) per voxel in the raw's axes order, or one number")
    if not np.issubdtype(dmap.dtype, np.number) or np.iscomplexobj(dmap):
        raise ValueError(f"depth map must hold real numbers (micrometres), got dtype {dmap.dtype}")
    if not np.all(np.isfinite(dmap)) or dmap.min() < 0:
        raise ValueError("depth map must be finite and >= 0 micrometres everywhere (0 at the surface and outside "
                         "the tissue, e.g. from deepcontrast.depth.surface_depth)")
    moved = axes_last(dmap.astype(np.float32), axes, "ZYX")[0]
    moved = moved if "Z" in axes else moved[None]
    if np.all(moved == moved[:, :1, :1]):  # one depth per plane: the same as those depths given per plane
        plane = moved[:, 0, 0].astype(float)
        return plane, plane, "map"
    # a plane's depth: the median over its tissue (depth > 0), where it has any
    inside = np.where(moved > 0, moved, np.nan)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # planes without tissue: all NaN, depth 0
        plane = np.nan_to_num(np.nanmedian(inside.reshape(len(moved), -1), axis=1), nan=0.0).astype(float)
    return np.ascontiguousarray(moved), plane, "map"


#: a plane of a curved sample is compared on its tissue alone when it holds at least this many tissue voxels
MIN_TISSUE_PX = 64


def tissue_planes(depth_map):
    """Planes of a ``(Z, Y, X)`` depth map with at least :data:`MIN_TISSUE_PX` tissue voxels (depth > 0)."""
    return np.sum((depth_map > 0).reshape(len(depth_map), -1), axis=1) >= MIN_TISSUE_PX


def _models(degradation, raw, axes, voxel_size, surface, depth):
    """The forward model and the noise model ``{'photons', 'read_noise', 'background', 'source', ...}``."""
    if isinstance(degradation, str) and degradation == "auto":
        d0 = float(np.min(depth)) if np.ndim(depth) else depth
        deg, cal = DeepTissueDegradation.calibrate(raw, axes, voxel_size=voxel_size, surface=surface, depth=d0)
        source = "calibrated from the raw (degradation='auto')"
    elif isinstance(degradation, DeepTissueDegradation):
        deg, source = degradation, "the degradation's noise model"
    else:
        raise ValueError(f"degradation must be a DeepTissueDegradation (the model the network was trained with) or "
                         f"'auto' (calibrate it from the raw), got {degradation!r}")
    if deg.photons is not None or deg.read_noise > 0:
        return deg, {"photons": deg.photons, "read_noise": float(deg.read_noise), "background": float(deg.background),
                     "source": source}
    from ..calibration import fit_noise

    planes = axes_last(raw, axes, "YX")[0].reshape((-1,) + _yx(raw, axes))
    fit = fit_noise(list(planes.astype(np.float64)))
    if fit["status"] == "noise-free":
        raise ValueError("the raw image shows no noise and the degradation has none (photons=None, read_noise=0), so "
                         "residuals cannot be put in noise units; give a degradation with photons or read_noise set")
    noise = {"photons": fit["photons"], "read_noise": float(fit["read_noise"]), "background": float(fit["offset"]),
             "source": f"the raw's mean-variance fit (calibration.fit_noise, status {fit['status']}): the degradation "
                       "has no noise"}
    return deg, noise


def _yx(raw, axes):
    return raw.shape[axes.index("Y")], raw.shape[axes.index("X")]


def _grid(plane_depth, start_map, max_depth, step):
    deepest = float(np.max(start_map))
    top = deepest + MARGIN if max_depth is None else check_number(max_depth, "max_depth")
    if top <= 0:
        raise ValueError(f"max_depth must be > 0 micrometres, got {max_depth!r}")
    if step is None:
        step = min(STEP, top / 8)
    step = check_number(step, "step")
    if step <= 0:
        raise ValueError(f"step must be > 0 micrometres, got {step!r}")
    n = int(np.ceil(top / step - 1e-9))
    return np.linspace(0.0, n * step, n + 1)
