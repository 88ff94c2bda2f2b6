"""Depth statistics of a curved sample: per-voxel depth maps instead of slice depths.

With a per-voxel depth map (e.g. :func:`deepcontrast.depth.surface_depth`) a slice no longer
lies at one depth: in a spheroid imaged from above, a slice cuts through tissue just below the
surface at its rim and far below it at its centre, and holds dark medium around it. The
calibration then measures on *tiles* instead of slices: every slice is cut into lateral tiles
of about :data:`TILE_UM` micrometres (half-overlapping); a tile counts when at least
:data:`MIN_TISSUE` of its voxels are tissue; its depth is the mean depth of its voxels. Tiles
are pooled into depth bins one slice spacing wide, and each bin becomes a pseudo-slice with
exactly the statistics :func:`~deepcontrast.calibration.depth.slice_stats` gives a slice (mean
above the dark level, noise-corrected radial power spectra, axial correlation from the same
tile one to several slices further down), so the attenuation and spectral fits run unchanged
on them. A bin may hold a single tile (the deepest bins of a spheroid, under its centre), whose
power at a frequency is the average of a handful of Fourier coefficients: white noise alone
exceeds its expected power there by half or more in several percent of the points. Points whose
structure power is not :data:`SIGNIFICANCE` standard errors above the noise are marked not
``significant`` and left out of the spectral fit; bins of many tiles are not affected (their
points are held to ``signal > noise``, as slices are).

The attenuation is fitted to the mean of all tissue voxels per depth bin instead (more light
than the tiles, which miss the rim), with the light the model's halo loses to the dark medium
around the tissue divided out (:func:`voxel_profile`), by :func:`fit_attenuation_map`. Under a
curved surface the depth bins hold very different volumes of tissue (the deepest ones only the
tissue under the centre), and each bin's mean scatters around the exponential by how much
labelled structure the bin happens to hold: a sample's structure is a random draw, and a bin
holding fewer structures scatters more. The robust fit weighs each bin by its number of voxels
(inverse variance, when the scatter is that of the structures a bin holds), and its uncertainty
is a jackknife over lateral blocks of :data:`BLOCK_UM` (regions of the sample far enough apart
to hold independent structures, each left out once), as the regression's own standard error
assumes bins that scatter independently, which neighbouring bins, sharing structures, do not.
Measured on ``synthetic_spheroid`` (48x192x192, truth 60 um, seeds 0-11), the spread of the
fitted attenuation over samples is about 10% (the regression's standard error said 3-4%; the
jackknife says 4-14%): structures (nuclei of a few micrometres, a few hundred in the sample)
vary in number by depth, and one stack cannot tell that from attenuation (dividing the true
structure profile out, the truth of the synthetic sample, leaves 57-63 um).

Ideas measured and left out: a per-plane (per-Z) brightness term, taking the attenuation only
from how depth varies within each plane under the curved surface, absorbs structure or
brightness that changes along Z (layers, bleaching over the planes) but not structure that
changes laterally; on the spheroid (random in all three dimensions) the lateral variation
dominates and it gave 22-290 um (with the true structure divided out 55-99 um). Statistics of
the bright structure alone (mean of the top 10-30% of a bin, its 90th percentile), which do not
count how many structures a bin holds, fall with depth through the blur as well (44-60 um, 20%
low on average), and after correcting that with the fitted model by pushing the stack itself
deeper (extra depth 10 um) still follow the structure count (48-71 um): at depth the blur is as
wide as the structures and their spacing, and only the bin's mean keeps its light.

The tissue (:func:`tissue_mask`) is the voxels with a depth > 0 together with the voxels at depth
0 that :func:`deepcontrast.depth.find_tissue` finds in the stack: a depth map is 0 both at the
tissue's surface and in the medium outside it, so a voxel at depth 0 counts only if it looks like
tissue.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft as sfft

from ..internals.checks import check_depth_arg
from ..depth import AUTO_SURFACES, find_tissue, resolve_depth
from .depth import axial_correlation, decide_attenuation, fit_attenuation

__all__ = ["depth_maps", "fit_attenuation_map", "is_flat", "tile_stats", "tissue_mask", "voxel_profile", "voxel_sums"]

#: lateral size of a tile (um), clipped to 16..64 pixels and to the stack
TILE_UM = 16.0
#: fraction of a tile's voxels that must be tissue for it to count
MIN_TISSUE = 0.95
#: radial frequency bins of a tile's power spectrum
N_FREQ_BINS = 12
#: a depth bin's power at a frequency counts as structure only when it exceeds the noise power by this
#: many standard errors of the noise power's estimate (:func:`tile_stats`)
SIGNIFICANCE = 3.0
#: standard error of white noise's power in a radial bin, times sqrt(coefficients averaged): the Hann
#: window correlates neighbouring Fourier coefficients (measured on 32 x 32 tiles: 1.0-1.8 over the bins)
NOISE_SE_FACTOR = 2.0
#: lateral size (um) of the blocks the attenuation's jackknife leaves out one at a time
BLOCK_UM = 24.0
#: fewer lateral blocks than this holding tissue: no jackknife, the regression's standard error only
MIN_BLOCKS = 5


def is_flat(dmap):
    """True when every plane of a ``(Z, Y, X)`` depth map holds one depth (a flat surface)."""
    flat = dmap.reshape(len(dmap), -1)
    return bool(np.all(flat == flat[:, :1]))


def tile_stats(stack, dmap, vs, offset, noise, tissue=None):
    """Per-depth-bin statistics of a stack with a depth per voxel, as ``slice_stats`` gives per slice.

    Parameters
    ----------
    stack : numpy.ndarray
        ``(n_z, ny, nx)`` raw data.
    dmap : numpy.ndarray
        ``(n_z, ny, nx)`` depth (um) of each voxel, 0 outside the tissue.
    vs : tuple of float
        Voxel size (um), ``(Z, Y, X)``.
    offset : float
        Dark level.
    noise : dict
        Noise fit (``photons``, ``read_noise``).
    tissue : numpy.ndarray of bool or None
        Tissue mask; default ``dmap > 0`` or what :func:`~deepcontrast.depth.find_tissue` finds.

    Returns
    -------
    stats : dict or None
        As :func:`~deepcontrast.calibration.depth.slice_stats` (``mean``, ``freq``, ``signal``,
        ``noise``, ``counts``, ``n_pixels``, ``rho``), one row per depth bin holding tiles;
        also ``n_tiles`` per bin and ``significant``, per bin and frequency whether the
        structure's power lies :data:`SIGNIFICANCE` standard errors of the noise power above 0
        (the standard error from the ``counts * n_tiles`` Fourier coefficients averaged). None
        when no tile is inside the tissue.
    depths : numpy.ndarray
        Mean depth (um) of the tiles of each bin.
    """
    n_z, ny, nx = stack.shape
    vz, vyx = float(vs[0]), (float(vs[1]), float(vs[2]))
    if tissue is None:
        tissue = tissue_mask(stack, dmap, vs)
    t = int(np.clip(round(TILE_UM / min(vyx)), 16, 64))
    t = min(t, ny, nx)
    step = max(t // 2, 1)
    starts_y, starts_x = np.arange(0, ny - t + 1, step), np.arange(0, nx - t + 1, step)

    def tiles(a):  # (n_z, n_ty, n_tx, t, t) views
        return sliding_window_view(a, (t, t), axis=(1, 2))[:, starts_y][:, :, starts_x]

    frac = tiles(tissue).mean(axis=(-2, -1))
    tile_depth = tiles(dmap).mean(axis=(-2, -1))
    valid = frac >= MIN_TISSUE
    if not valid.any():
        return None, np.zeros(0)
    bins = np.round(tile_depth / vz).astype(int)

    win = np.outer(np.hanning(t), np.hanning(t))
    wnorm = float((win**2).sum())
    fy, fx = sfft.fftfreq(t) / vyx[0], sfft.rfftfreq(t) / vyx[1]
    fr = np.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)
    edges = np.geomspace(2.0 / (t * max(vyx)), min(0.5 / vyx[0], 0.5 / vyx[1]), N_FREQ_BINS + 1)
    idx = np.searchsorted(edges, fr.ravel()) - 1
    ok = (idx >= 0) & (idx < N_FREQ_BINS)
    counts = np.bincount(idx[ok], minlength=N_FREQ_BINS)
    onehot = np.zeros((fr.size, N_FREQ_BINS))
    onehot[np.flatnonzero(ok), idx[ok]] = 1.0 / np.maximum(counts[idx[ok]], 1)  # radial average as a matrix

    b0 = int(bins[valid].min())
    n_rows = int(bins[valid].max()) - b0 + 1  # one row per depth bin, contiguous (lags count in rows)
    n_lags = int(min(n_z - 1, n_rows - 1, np.clip(np.ceil(24.0 / vz), 4, 64)))  # lags in rows too
    mean_sum, n_tiles, depth_sum = np.zeros(n_rows), np.zeros(n_rows), np.zeros(n_rows)
    power, nvar = np.zeros((n_rows, N_FREQ_BINS)), np.zeros(n_rows)
    cross, n_cross = np.zeros((n_rows, n_lags + 1, N_FREQ_BINS)), np.zeros((n_rows, n_lags + 1))
    photons, read = noise.get("photons"), noise.get("read_noise") or 0.0
    specs = {}
    for k in range(n_z):
        sel = np.argwhere(valid[k])
        if not len(sel):
            continue
        block = tiles(stack[k:k + 1])[0][sel[:, 0], sel[:, 1]]  # (n, t, t)
        m = block.mean(axis=(1, 2))
        spec = sfft.rfft2((block - m[:, None, None]) * win, workers=-1).astype(np.complex64)
        p = (np.abs(spec) ** 2).reshape(len(sel), -1) @ onehot / wnorm
        r = bins[k][sel[:, 0], sel[:, 1]] - b0
        np.add.at(mean_sum, r, m - offset)
        np.add.at(depth_sum, r, tile_depth[k][sel[:, 0], sel[:, 1]])
        np.add.at(n_tiles, r, 1)
        np.add.at(power, r, p)
        np.add.at(nvar, r, read**2 + (np.clip(m - offset, 0, None) / photons if photons else 0.0))
        specs[k] = dict(zip(map(tuple, sel), zip(spec, r)))
        for lag in range(1, n_lags + 1):  # the same tile `lag` slices further up: (shallower row, lag)
            prev = specs.get(k - lag)
            if not prev:
                continue
            for key, (s, _) in specs[k].items():
                if key in prev:
                    s0, r0 = prev[key]
                    if r0 + lag >= n_rows:  # a partner below the deepest row: no pair of rows
                        continue
                    cross[r0, lag] += (np.real(s0 * np.conj(s)).ravel() @ onehot) / wnorm
                    n_cross[r0, lag] += 1
        specs.pop(k - n_lags, None)
    n = np.maximum(n_tiles, 1)
    freq = np.sqrt(edges[:-1] * edges[1:])
    valid_bins = counts > 0
    signal = np.where(n_tiles[:, None] > 0, power / n[:, None] - (nvar / n)[:, None], np.nan)[:, valid_bins]
    noise_power = np.repeat((nvar / n)[:, None], valid_bins.sum(), 1)
    cross = (cross / np.maximum(n_cross, 1)[..., None])[:, :, valid_bins]
    rho = axial_correlation(cross, signal, noise_power)
    keep = n_tiles > 0
    n_coef = n_tiles[:, None] * counts[valid_bins][None, :]
    significant = signal > SIGNIFICANCE * NOISE_SE_FACTOR * noise_power / np.sqrt(np.maximum(n_coef, 1))
    stats = {"mean": (mean_sum / n)[keep], "freq": freq[valid_bins], "signal": signal[keep],
             "noise": noise_power[keep], "counts": counts[valid_bins], "n_pixels": t * t,
             "n_tiles": n_tiles[keep], "rho": rho, "significant": significant[keep]}
    return stats, (depth_sum / n)[keep]


def depth_maps(images, axes, voxel_size, surface, depth):
    """Per image its ``(Z, Y, X)`` depth map (None for a scalar depth), and what made them.

    ``depth`` is a number (no maps), one map for every image, or a list with a number or a map
    per image; ``surface='auto'``/``'auto-last'`` finds the maps from the images
    (:func:`deepcontrast.depth.resolve_depth`). The description (JSON, None without maps) names
    the source, whether every map is flat, and the depth range.
    """
    auto = surface in AUTO_SURFACES
    if not auto and not isinstance(depth, (list, tuple)) and np.ndim(depth) == 0:
        return [None] * len(images), None
    if isinstance(depth, (list, tuple)):
        if len(depth) != len(images):
            raise ValueError(f"depth is a list of {len(depth)} entries for {len(images)} images; give one depth "
                             "(a number or a per-voxel map) per image, or one map for all")
        per_image = list(depth)
    else:
        per_image = [depth] * len(images)
    maps = []
    for i, (img, d) in enumerate(zip(images, per_image)):
        img = np.asarray(img)
        if auto:
            d, _ = resolve_depth(img, axes, voxel_size=voxel_size, surface=surface, depth=d)
        try:
            d = check_depth_arg(d, img.shape, axes)
        except ValueError as e:
            raise ValueError(f"image {i}: {e}") from None
        maps.append(None if np.ndim(d) == 0 else d)
    if all(m is None for m in maps):
        raise ValueError("depth is a list of numbers: give one number for all images, or a per-voxel map per image")
    real = [m for m in maps if m is not None]
    info = {"source": f"surface_depth(surface={AUTO_SURFACES[surface]!r})" if auto else "given",
            "flat": all(is_flat(m) for m in real),
            "range": [float(min(m.min() for m in real)), float(max(m.max() for m in real))]}
    if any(m is None for m in maps):  # scalar depths for some images: as today, slices from `depth`
        raise ValueError("depth mixes numbers and per-voxel maps between images; give a map for every image "
                         "(or a number for every image)")
    return maps, info


def tissue_mask(stack, dmap, vs):
    """The voxels that count as tissue: depth > 0, or depth 0 where :func:`~deepcontrast.depth.find_tissue` finds tissue."""
    return (dmap > 0) | ((dmap == 0) & find_tissue(stack, vs))


def voxel_sums(stack, dmap, tissue, vs, offset, model, block_um=BLOCK_UM):
    """Sums of the tissue voxels per lateral block and depth bin (one slice spacing wide), for
    :func:`voxel_profile` and the jackknife of :func:`fit_attenuation_map`.

    ``model`` (the calibration's fit so far, attenuation and noise off) renders the tissue mask
    at the map's depths: the fraction of a uniform tissue's light each voxel keeps (near the
    tissue's boundary the model's halo and blur mix dark medium into a voxel, which a flat slab
    never sees). Voxels at depth 0 (where a map cannot tell the tissue's surface from the medium)
    light their neighbours but are not summed.

    Returns
    -------
    dict
        ``light`` (sum above ``offset``), ``kept`` (sum of the rendered mask), ``depth`` and ``n``
        (voxel count), each ``(n_blocks, n_bins)`` over the blocks that hold tissue; ``min_n``,
        the fewest voxels a bin needs (one :data:`TILE_UM` tile).
    """
    vz, vyx = float(vs[0]), min(float(vs[1]), float(vs[2]))
    fill = model.render(tissue.astype(np.float32), "ZYX", depth=dmap, voxel_size=vs)
    sel = tissue & (dmap > 0)
    b = np.round(dmap[sel] / vz).astype(int)
    _, yy, xx = np.nonzero(sel)
    by, bx = max(int(round(block_um / float(vs[1]))), 1), max(int(round(block_um / float(vs[2]))), 1)
    block = (yy // by) * (stack.shape[2] // bx + 1) + xx // bx
    _, g = np.unique(block, return_inverse=True)
    n_g, n_b = int(g.max()) + 1 if g.size else 0, int(b.max()) + 1 if b.size else 0
    cell = g * n_b + b

    def per_cell(v=None):
        return np.bincount(cell, v, minlength=n_g * n_b).reshape(n_g, n_b)

    return {"light": per_cell(stack[sel] - offset), "kept": per_cell(fill[sel]), "depth": per_cell(dmap[sel]),
            "n": per_cell(), "min_n": (TILE_UM / vyx) ** 2}


def _profile(sums, bins=None, leave_out=None):
    """``(z, mean, n)`` of the depth bins (``bins``: a bin mask; default those with ``min_n`` voxels), pooled
    over the blocks except ``leave_out``."""
    tot = {k: sums[k].sum(0) - (0 if leave_out is None else sums[k][leave_out]) for k in ("light", "kept", "depth", "n")}
    if bins is None:
        bins = tot["n"] >= sums["min_n"]
    ok = bins & (tot["n"] > 0) & (tot["kept"] > 0) & (tot["light"] > 0)
    n = tot["n"][ok]
    return tot["depth"][ok] / n, tot["light"][ok] / tot["kept"][ok], n


def voxel_profile(stack, dmap, tissue, vs, offset, model):
    """Mean above ``offset`` of the tissue voxels per depth bin (one slice spacing wide), with the
    light the model loses to the medium divided out (see :func:`voxel_sums`). Bins with fewer voxels
    than one :data:`TILE_UM` tile are dropped.

    Returns
    -------
    (z, mean) : tuple of 1D numpy.ndarray
        Mean depth (um) of each bin and its corrected mean intensity.
    """
    z, mean, _ = _profile(voxel_sums(stack, dmap, tissue, vs, offset, model))
    return z, mean


def fit_attenuation_map(entries, default, oof_weight=None):
    """The attenuation from stacks with depth maps (and slice profiles of other stacks, if any).

    Parameters
    ----------
    entries : list
        Per stack either the sums of :func:`voxel_sums` (a curved map) or a ``(z, mean, n_pixels)``
        slice profile (depths, slice means above the offset, pixels per slice).
    default : float or None
        Attenuation length to fall back to.
    oof_weight : callable or None
        ``w(z)`` of out-of-focus light to divide out.

    Returns
    -------
    dict
        As :func:`~deepcontrast.calibration.depth.fit_attenuation` (robust, one intercept per stack),
        each depth bin weighed by its voxel count and each slice by its pixel count;
        ``slope_se`` and ``se`` the larger of the regression's standard error and the jackknife's over
        the lateral blocks (left out one at a time, each stack's bins kept), which
        ``slope_se_regression`` and ``slope_se_jackknife`` (None with fewer than :data:`MIN_BLOCKS`
        blocks) give apart; ``n_blocks``.
    """
    bins = [None if isinstance(e, tuple) else e["n"].sum(0) >= e["min_n"] for e in entries]

    def fit(leave_out=None):
        profiles, weights = [], []
        for i, (e, keep) in enumerate(zip(entries, bins)):
            if isinstance(e, tuple):  # a slice profile: each slice weighs its pixels
                z, m, n_pixels = e
                profiles.append((z, m))
                weights.append(np.full(len(z), float(n_pixels)))
            else:
                z, m, n = _profile(e, keep, None if leave_out is None or leave_out[0] != i else leave_out[1])
                profiles.append((z, m))
                weights.append(n)
        return fit_attenuation(profiles, default, oof_weight, weights=weights)

    out = fit()
    out["slope_se_regression"], out["slope_se_jackknife"], out["n_blocks"] = out.get("slope_se"), None, 0
    if out.get("slope") is None:
        return out
    blocks = [(i, g) for i, e in enumerate(entries) if not isinstance(e, tuple) for g in range(len(e["n"]))]
    out["n_blocks"] = len(blocks)
    if len(blocks) >= MIN_BLOCKS:
        slopes = np.array([s for s in (fit(b).get("slope") for b in blocks) if s is not None])
        if len(slopes) >= MIN_BLOCKS:
            k = len(slopes)
            jk = float(np.sqrt((k - 1) / k * np.sum((slopes - slopes.mean()) ** 2)))
            out["slope_se_jackknife"] = jk
            out["slope_se"] = max(out["slope_se"], jk)
    return decide_attenuation(out, default)
