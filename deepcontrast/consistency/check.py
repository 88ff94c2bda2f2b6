"""Restored depth and noise-normalized residual of each iterate against the raw data (numpy/scipy only).

If iterate ``k`` restores plane ``z`` "as if imaged ``D`` micrometres shallower", the noise-free
forward model taking it from depth ``z - D`` back down to ``z`` must give the raw plane within
the raw's noise. :func:`check_consistency` finds ``D`` per plane and reports the residual in
units of the noise (the discrepancy principle of inverse problems); see the module docstring of
:mod:`deepcontrast.consistency` for the method and its measured behaviour.
"""
import logging
import time

import numpy as np
from scipy import fft as sfft
from scipy import ndimage as ndi

from ..internals.filters import blur_mix
from ..degradation import DeepTissueDegradation, slice_depths
from ..internals.axes import axes_last, check_image_axes, spatial_voxel_size
from ..internals.checks import check_number, check_surface
from .report import ConsistencyReport

__all__ = ["check_consistency"]

log = logging.getLogger(__name__)

#: default spacing (um) of the depth grid on which the forward model runs
STEP = 5.0
#: the grid reaches this far (um) beyond the deepest plane: restoration past the surface shows
MARGIN = 25.0
#: depths tried between two grid points (the forward model interpolated linearly between them)
FINE = 20
#: the bracket search starts on every COARSE-th grid depth
COARSE = 4
#: lateral smoothing (px) of the raw before it gives the Poisson variance (see the package docstring)
VARIANCE_SMOOTHING = 1.0
#: lateral size (px) of the central crop of each plane on which the restored depth is searched
SEARCH_SIZE = 128
#: px around the search crop that feed the forward model's kernels but are not compared: with
#: reflection at the crop's own border the depth of the truth's deepest planes came out 15% short
SEARCH_MARGIN = 16


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
    so a crop of 16k pixels holds the depth as well as the whole plane: within 0.3 um on the
    built-in sample); chi2, gain and offset are then fitted on the whole plane, pushed down by
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
        voxel, shaped like ``raw`` (e.g. from :func:`deepcontrast.depth.surface_depth`).
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
    y = raw_zyx.astype(np.float32, copy=False)
    consts = _constants(w, y)
    sub = (slice(None),) + _central_crop(y.shape[1:], None if search_size is None else search_size + 2 * SEARCH_MARGIN)
    w_c, y_c = np.array(w[sub]), np.ascontiguousarray(y[sub])
    if search_size is not None:  # the margin feeds the forward model's kernels but is not compared
        for ax, n in ((1, w_c.shape[1]), (2, w_c.shape[2])):
            m = max(0, (n - search_size) // 2)
            if m:
                idx = [slice(None)] * 3
                idx[ax] = slice(0, m)
                w_c[tuple(idx)] = 0
                idx[ax] = slice(n - m, n)
                w_c[tuple(idx)] = 0
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
    plane = np.median(moved.reshape(len(moved), -1), axis=1).astype(float)
    if np.all(moved == moved[:, :1, :1]):  # one depth per plane: the same as those depths given per plane
        return plane, plane, "map"
    return np.ascontiguousarray(moved), plane, "map"


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


def _central_crop(shape_yx, size):
    """Slices of the central ``size`` x ``size`` px of a plane (the whole plane when smaller, or ``size`` None)."""
    if size is None:
        return tuple(slice(None) for _ in shape_yx)
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"search_size must be an integer of at least 16 px (or None for the whole plane), got {size!r}")
    return tuple(slice((n - min(n, size)) // 2, (n - min(n, size)) // 2 + min(n, size)) for n in shape_yx)


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


# -- the search -------------------------------------------------------------------------------
def _psum(a):
    """Per-plane sum of a ``(Z, Y, X)`` array as float64 (numpy's pairwise summation along each
    contiguous plane: relative error ~1e-7 in float32, without a float64 copy of the array)."""
    return np.sum(a.reshape(len(a), -1), axis=1).astype(np.float64)


def _constants(w, y):
    """Per-plane sums of the weighted raw: (sum w, sum w y, sum w y^2, pixels per plane)."""
    return _psum(w), _psum(w * y), _psum(w * y * y), np.float64(y[0].size)


def _fit(pushed, w, y, consts):
    """chi2, gain and offset per plane of the raw ``y`` against one pushed stack (weights ``w``)."""
    wf = w * pushed
    stats = tuple(a[None] for a in (_psum(wf * pushed), _psum(wf), _psum(wf * y), np.zeros(len(y))))
    zero = np.zeros((1, len(y)), int)
    c, g, o = _chi2(stats, consts, zero, zero.astype(float))
    return c[0], g[0], o[0]


class _Search:
    """The noise-free forward model at the grid depths, applied to whole stacks (one pass per grid point)."""

    def __init__(self, fwd, start, vs, has_z, grid):
        self.fwd, self.start, self.vs, self.has_z, self.grid = fwd, start, vs, has_z, grid
        self.calls = 0
        self._coef = (None, None)  # (iterate, its lateral DCT): transformed once for every grid depth

    def forward(self, it, j):
        """Iterate ``it`` (Z, Y, X) pushed from ``depth - grid[j]`` down to each voxel's own depth."""
        d = float(self.grid[j])
        if d == 0:  # the identity
            return it
        start = np.maximum(self.start - d, 0.0)
        self.calls += 1
        if not self.has_z:
            s = start[0] if start.ndim == 3 else float(start[0])
            return self.fwd(it[0], "YX", extra_depth=d, depth=s, voxel_size=self.vs)[None]
        if start.ndim == 1:  # one depth per plane: the forward model's scalar path on a stack transformed once
            return self._per_plane(it, d, start)
        return self.fwd(it, "ZYX", extra_depth=d, depth=start, voxel_size=self.vs)

    def pushed(self, it, d, where):
        """``it`` pushed down by ``d[z]`` um on each plane ``z``: in one pass where the depth is one per
        plane, else (a depth per voxel) interpolated between the grid depths ``where = (j, t)``."""
        d = np.asarray(d, float)
        if self.start.ndim == 1 and self.has_z:
            self.calls += 1
            return self._per_plane(it, d, np.maximum(self.start - d, 0.0))
        if self.start.ndim == 1:  # one 2D plane
            self.calls += 1
            s = max(float(self.start[0] - d[0]), 0.0)
            return self.fwd(it[0], "YX", extra_depth=float(d[0]), depth=s, voxel_size=self.vs)[None]
        j, t = where
        pred = np.zeros(it.shape, np.float32)
        for g in np.union1d(j, j[t > 0] + 1):
            wgt = np.where(j == g, 1 - t, 0.0) + np.where((j + 1 == g) & (t > 0), t, 0.0)
            if np.any(wgt):
                pred += wgt.astype(np.float32)[:, None, None] * self.forward(it, int(g))
        return pred

    def bracket(self, it, w, y, consts):
        """Per plane, the continuous depth of least chi2 with each plane pushed by its own depth.

        The grid every ``COARSE`` grid steps first (the deepest grid depth included), then
        bisection of the bracket around each plane's best depth (two passes per halving) down
        to half a grid step, then a parabola through the best point and its neighbours. About
        half the passes of the whole grid for the same depth (chi2 against depth is smooth and
        has one minimum: measured on the built-in sample and the dim render)."""
        grid = self.grid
        coarse = np.unique(np.append(grid[::COARSE], grid[-1]))
        n_z = len(it)

        def chi2_at(d):
            return _fit(self.pushed(it, np.broadcast_to(d, (n_z,)), None), w, y, consts)[0]

        curve = np.array([chi2_at(float(d)) for d in coarse])
        b = np.argmin(curve, axis=0)
        cols = np.arange(n_z)
        mid, c_mid = coarse[b], curve[b, cols]
        c_lo = np.where(b > 0, curve[np.maximum(b - 1, 0), cols], np.inf)
        c_hi = np.where(b < len(coarse) - 1, curve[np.minimum(b + 1, len(coarse) - 1), cols], np.inf)
        h = float(np.max(np.diff(coarse))) if len(coarse) > 1 else 0.0
        fine = (grid[1] - grid[0]) / 2 if len(grid) > 1 else 0.0
        top = float(grid[-1])
        while h > fine + 1e-9:
            h /= 2
            dl, dh = mid - h, mid + h
            cl = np.where(dl >= 0, chi2_at(np.maximum(dl, 0.0)), np.inf)
            ch = np.where(dh <= top + 1e-9, chi2_at(np.minimum(dh, top)), np.inf)
            go_lo, go_hi = (cl < c_mid) & (cl <= ch), (ch < c_mid) & (ch < cl)
            new_mid = np.where(go_lo, dl, np.where(go_hi, dh, mid))
            new_c = np.where(go_lo, cl, np.where(go_hi, ch, c_mid))
            c_lo, c_hi = (np.where(go_lo, c_lo, np.where(go_hi, c_mid, cl)),
                          np.where(go_lo, c_mid, np.where(go_hi, c_hi, ch)))
            mid, c_mid = new_mid, new_c
        denom = c_lo - 2 * c_mid + c_hi
        ok = np.isfinite(denom) & (denom > 0)
        shift = np.clip(np.where(ok, 0.5 * (c_lo - c_hi) / np.where(ok, denom, 1.0), 0.0), -0.5, 0.5)
        return np.clip(mid + shift * h, 0.0, top)

    def _per_plane(self, it, d, start):
        """``fwd(it, 'ZYX', extra_depth=d, depth=<start per plane>)`` without its checks and with the
        lateral DCT of the iterate reused across grid depths (the same arithmetic; half the transforms).
        ``d``: one push for all planes, or one per plane."""
        bg = np.float32(self.fwd.background)
        if self._coef[0] is not it:
            self._coef = (it, sfft.dctn(it - bg if bg else it, axes=(1, 2), workers=-1).astype(np.float32, copy=False))
        start = np.asarray(start, float)
        if np.ndim(d) == 0:
            ra, rb, s_ball, s_haze, s_oof, w_oof = self.fwd._increment(float(d))(start)
        else:  # plane by plane (the increment's arguments are cheap closed forms)
            per = [self.fwd._increment(float(dz))(start[i: i + 1]) for i, dz in enumerate(d)]
            ra, rb, s_ball, s_haze, s_oof, w_oof = (np.concatenate(a) for a in zip(*per))
        src = it - bg if bg else it
        out = blur_mix(src, ra, rb, s_ball, s_haze, self.vs[0], self.vs[1:], axial=True, s_oof=s_oof, w_oof=w_oof,
                        coef=self._coef[1])
        if bg:
            out += bg
        return out

    def statistics(self, it, w, y):
        """Per grid point and plane: sum w F^2, sum w F, sum w F y, and sum w F_j F_{j+1}."""
        n = len(self.grid)
        ff, f1, fy, cross = (np.zeros((n, len(it))) for _ in range(4))
        wy = w * y
        prev, wf, tmp = None, np.empty_like(w), np.empty_like(w)
        for j in range(n):
            f = self.forward(it, j)
            np.multiply(w, f, out=wf)
            ff[j], f1[j], fy[j] = _psum(np.multiply(wf, f, out=tmp)), _psum(wf), _psum(np.multiply(wy, f, out=tmp))
            if prev is not None:
                cross[j - 1] = _psum(np.multiply(prev, f, out=tmp))
                prev, wf = wf, prev  # swap the buffers: wf becomes the previous point's
            else:
                prev, wf = wf, np.empty_like(w)
        return ff, f1, fy, cross


def _chi2(stats, consts, j, t):
    """chi2, gain, offset of the prediction ``(1 - t) F_j + t F_{j+1}`` (arrays broadcasting with planes)."""
    ff, f1, fy, cross = stats
    sw, swy, swyy, n_px = consts
    k = np.minimum(j + 1, len(ff) - 1)
    u = 1 - t
    spp = (u * u * np.take_along_axis(ff, j, 0) + 2 * t * u * np.take_along_axis(cross, j, 0)
           + t * t * np.take_along_axis(ff, k, 0))
    sp = u * np.take_along_axis(f1, j, 0) + t * np.take_along_axis(f1, k, 0)
    spy = u * np.take_along_axis(fy, j, 0) + t * np.take_along_axis(fy, k, 0)
    var_p = spp - sp * sp / sw
    cov = spy - sp * swy / sw
    var_y = swyy - swy * swy / sw
    ok = var_p > 1e-12 * np.maximum(spp, 1e-300)
    gain = np.where(ok, cov / np.where(ok, var_p, 1.0), 0.0)
    rss = np.where(ok, var_y - gain * cov, var_y)
    chi2 = np.maximum(rss, 0.0) / max(n_px - 2, 1)
    return chi2, gain, (swy - gain * sp) / sw


def _minimize(grid, stats, consts):
    """Per plane: the continuous depth of least chi2, and chi2, gain, offset and (interval, t) there."""
    n_z = stats[0].shape[1]
    n_int = max(len(grid) - 1, 1)
    t = np.linspace(0.0, 1.0, FINE + 1)[:-1] if len(grid) > 1 else np.zeros(1)
    jj = np.repeat(np.arange(n_int), len(t))
    tt = np.tile(t, n_int)
    if len(grid) > 1:  # and the last grid point itself
        jj, tt = np.append(jj, n_int - 1), np.append(tt, 1.0)
    d_all = grid[jj] + tt * (grid[np.minimum(jj + 1, len(grid) - 1)] - grid[jj])
    J = np.broadcast_to(jj[:, None], (len(jj), n_z))
    c_all = _chi2(stats, consts, J, tt[:, None])[0]
    best = np.argmin(c_all, axis=0)
    # parabola through the best fine point and its neighbours (on the fine grid, spacing h)
    lo, hi = np.maximum(best - 1, 0), np.minimum(best + 1, len(jj) - 1)
    cols = np.arange(n_z)
    c0, cl, ch = c_all[best, cols], c_all[lo, cols], c_all[hi, cols]
    inner = (lo < best) & (best < hi)
    denom = cl - 2 * c0 + ch
    shift = np.where(inner & (denom > 0), 0.5 * (cl - ch) / np.where(denom > 0, denom, 1.0), 0.0)
    shift = np.clip(shift, -0.5, 0.5)
    d_best = d_all[best] + shift * np.where(shift < 0, d_all[best] - d_all[lo], d_all[hi] - d_all[best])
    j = np.clip(np.searchsorted(grid, d_best, side="right") - 1, 0, n_int - 1)
    step = grid[np.minimum(j + 1, len(grid) - 1)] - grid[j]
    tj = np.where(step > 0, (d_best - grid[j]) / np.where(step > 0, step, 1.0), 0.0)
    c, g, o = _chi2(stats, consts, j[None], tj[None])
    refined_worse = c[0] > c0  # the parabola may miss on a kinked curve: keep the fine point then
    d_best = np.where(refined_worse, d_all[best], d_best)
    j = np.where(refined_worse, jj[best], j)
    tj = np.where(refined_worse, tt[best], tj)
    c, g, o = _chi2(stats, consts, j[None], tj[None])
    return d_best, c[0], g[0], o[0], (j, tj)
