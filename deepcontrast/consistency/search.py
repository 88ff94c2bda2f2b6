"""The search of :func:`~deepcontrast.consistency.check_consistency`: each plane's restored depth and its fit.

The noise-free forward model pushes an iterate down by a depth ``D`` (:class:`_Search`); per
plane, raw ~ gain * pushed + offset by weighted least squares gives chi2 (:func:`_chi2`,
:func:`_fit`). With one depth per plane each pass pushes every plane by its own ``D`` and
:meth:`_Search.bracket` narrows each plane's bracket; with a depth per voxel the whole grid
runs and :func:`_minimize` interpolates between grid depths. The search runs on a central
crop of every plane (:func:`search_crop`).
"""
import numpy as np
from scipy import fft as sfft

from ..internals.filters import blur_mix

#: depths tried between two grid points (the forward model interpolated linearly between them)
FINE = 20
#: the bracket search starts on every COARSE-th grid depth
COARSE = 4
#: lateral size (px) of the central crop of each plane on which the restored depth is searched
SEARCH_SIZE = 128
#: px around the search crop that feed the forward model's kernels but are not compared: with
#: reflection at the crop's own border the depth of the truth's deepest planes came out 15% short
SEARCH_MARGIN = 16


def search_crop(w, y, size):
    """``(index, weights, raw)`` of the central search crop of ``(Z, Y, X)`` weights and raw.

    The crop is ``size`` px per lateral axis plus :data:`SEARCH_MARGIN` on each side (the whole
    plane when smaller, or ``size`` None); the margin's weights are 0, so it feeds the forward
    model's kernels but is not compared.
    """
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16):
        raise ValueError(f"search_size must be an integer of at least 16 px (or None for the whole plane), got {size!r}")
    sub, inner = [slice(None)], [slice(None)]
    for n in y.shape[1:]:
        side = n if size is None else min(n, size + 2 * SEARCH_MARGIN)
        start = (n - side) // 2
        m = 0 if size is None else max(0, (side - size) // 2)
        sub.append(slice(start, start + side))
        inner.append(slice(m, side - m))
    sub, inner = tuple(sub), tuple(inner)
    w_c = np.zeros(y[sub].shape, np.float32)
    w_c[inner] = w[sub][inner]
    return sub, w_c, np.ascontiguousarray(y[sub])


def _psum(a):
    """Per-plane sum of a ``(Z, Y, X)`` array as float64 (numpy's pairwise summation along each
    contiguous plane: relative error ~1e-7 in float32, without a float64 copy of the array)."""
    return np.sum(a.reshape(len(a), -1), axis=1).astype(np.float64)


def _constants(w, y):
    """Per-plane sums of the weighted raw: (sum w, sum w y, sum w y^2, pixels of weight > 0 per plane)."""
    return _psum(w), _psum(w * y), _psum(w * y * y), _psum(w > 0)


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
    chi2 = np.maximum(rss, 0.0) / np.maximum(n_px - 2, 1)
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
