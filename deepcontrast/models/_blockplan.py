"""Blocks of a big volume and the global normalization for blockwise prediction.

Geometry: the volume is cut into *cores* (the output chunks). Along the network's spatial
axes a core is a multiple of the network's block size ``2**unet_n_depth`` and is read with
``context`` pixels on each side (the tiling halo times the number of iterations), clipped at
the volume; the region is also made congruent to the volume's size modulo the block size,
so a resizer that pads to a multiple of the block pads every region exactly as it pads the
whole volume (same amounts at the volume's borders, same alignment of the network's pooling
grid). Other axes (S, T, and Z for a 2D network) are cut without context; C is never cut.
"""
import copy
import logging
import math

import numpy as np

from ..data.volume import sample_stride

logger = logging.getLogger(__name__)

#: voxels in the sample the global percentiles are computed from (the whole volume below that)
SAMPLE_VOXELS = 2**24
#: voxels per plane (sample) at least, for per-plane normalization
PLANE_SAMPLE_VOXELS = 2**16


class BlockGrid:
    """Cores, regions and output chunks of a volume (axes as in the source)."""

    def __init__(self, shape, axes, spatial, core, context, net_block):
        self.shape, self.axes, self.spatial = tuple(shape), axes, spatial
        self.core, self.context, self.net_block = tuple(core), dict(context), net_block
        self.counts = tuple(max(1, math.ceil(n / c)) for n, c in zip(self.shape, self.core))

    def __len__(self):
        return int(np.prod(self.counts))

    def indices(self):
        return list(np.ndindex(*self.counts))

    def core_slices(self, index):
        return tuple(slice(i * c, min(n, (i + 1) * c)) for i, c, n in zip(index, self.core, self.shape))

    def region(self, index):
        """(slices to read, slices of the core within what was read)."""
        read, inner = [], []
        for a, sl, n in zip(self.axes, self.core_slices(index), self.shape):
            if a in self.spatial:
                h = self.context[a]
                start = max(0, sl.start - h)
                stop = min(n, sl.stop + h + n % self.net_block)
            else:
                start, stop = sl.start, sl.stop
            read.append(slice(start, stop))
            inner.append(slice(sl.start - start, sl.stop - start))
        return tuple(read), tuple(inner)


def check_block_size(block_size, shape, axes, spatial, net_block):
    """Block size per axis of the source: spatial entries rounded up to multiples of ``net_block``."""
    try:
        bs = [int(b) for b in block_size]
        if len(bs) != len(shape) or any(b < 1 or b != f for b, f in zip(bs, block_size)):
            raise ValueError
    except (TypeError, ValueError):
        raise ValueError(f"block_size must be {len(shape)} integers >= 1 (one per axis of {axes!r}), "
                         f"got {block_size!r}") from None
    out = []
    for a, b, n in zip(axes, bs, shape):
        if a == "C":
            b = n
        elif a in spatial and b % net_block:
            r = -(-b // net_block) * net_block
            logger.warning("block size %d along %s is not a multiple of the network's %d (2**unet_n_depth); "
                           "using %d", b, a, net_block, r)
            b = r
        out.append(min(b, n) if a not in spatial else b)
    return tuple(out)


def whole_samples(core, shape, axes, spatial, net_block, n_dim):
    """Cores spanning whole Y-X planes (physical iterates keep each plane's light exactly)."""
    full = {a: -(-shape[axes.index(a)] // net_block) * net_block for a in spatial}
    cut = [a for a, c in zip(axes, core) if a in "YX" and c < shape[axes.index(a)]]
    if cut:
        logger.warning("physical iterates keep each plane's light: blocks span whole Y-X planes (%s not cut)",
                       "".join(cut))
    return tuple(full[a] if a in "YX" else c for a, c in zip(axes, core))


def default_block_size(shape, axes, spatial, net_block, context, bytes_per_voxel, budget_bytes):
    """Largest cores whose region (with context) goes through the network in one call within the budget."""
    from .tiling import auto_n_tiles, tile_layout

    sp_shape = [shape[axes.index(a)] for a in spatial]
    halo = [context[a] for a in spatial]
    tiles = auto_n_tiles(sp_shape, halo, net_block, bytes_per_voxel, budget_bytes)
    cores = {}
    for a, n, t in zip(spatial, sp_shape, tiles):
        cores[a] = max(net_block, -(-n // t // net_block) * net_block) if t > 1 else -(-n // net_block) * net_block
    window = np.prod([tile_layout(n, t, h, net_block)[0] for n, t, h in zip(sp_shape, tiles, halo)], dtype=float)
    planes = max(1, int(budget_bytes // (bytes_per_voxel * window)))
    out = []
    for a, n in zip(axes, shape):
        if a in cores:
            out.append(cores[a])
        elif a == "C":
            out.append(n)
        else:
            out.append(min(n, planes))
            planes = max(1, planes // n)
    return tuple(out)


def global_normalizer_values(model, volume, axes, normalizer):
    """Percentiles (``mi``, ``ma`` in the network layout) of a strided sample of the whole volume.

    They are computed by ``normalizer.before`` itself (on a copy), so they are what in-memory
    prediction computes on the whole volume when the sample is the whole volume (volumes up
    to ``SAMPLE_VOXELS``). Returns ``(None, None)`` for a normalizer without ``mi``/``ma``
    (nothing to fix globally), and ``per_sample`` tells their layout: False, one for the whole
    input; True, one row per sample; ``'plane'``, one row per sample and one entry per Z plane
    (a 3D network whose normalizer takes every Z plane on its own, see
    :class:`~deepcontrast.data.SlicePercentileNormalizer`).
    """
    spatial = model.config.axes.replace("C", "")
    net_axes = "S" + model.config.axes
    per_sample = _is_per_sample(model, normalizer, axes, volume, net_axes)
    if per_sample is None:
        return None, None, False
    if per_sample == "plane":
        mi, ma = _per_plane_values(model, normalizer, volume, axes, net_axes)
        return mi, ma, "plane"
    batch = [d for d, a in enumerate(axes) if a not in spatial and a != "C"]
    if not per_sample or not batch:
        step = sample_stride([n for a, n in zip(axes, volume.shape) if a != "C"], SAMPLE_VOXELS)
        region = tuple(slice(None) if a == "C" else slice(None, None, step) for a in axes)
        mi, ma = _percentiles(model, normalizer, volume.read(region), axes, net_axes)
        logger.info("normalization from a sample of every %d-th voxel along each axis of %s", step, volume.name)
        return mi, ma, False
    n_samples = int(np.prod([volume.shape[d] for d in batch]))
    plane = [volume.shape[axes.index(a)] for a in spatial]
    step = sample_stride(plane, max(PLANE_SAMPLE_VOXELS, SAMPLE_VOXELS // n_samples))
    per_slab = max(1, SAMPLE_VOXELS // int(np.prod([-(-n // step) for n in plane])) // (n_samples // volume.shape[batch[0]]))
    mis, mas = [], []
    for s0 in range(0, volume.shape[batch[0]], per_slab):
        region = tuple(slice(s0, s0 + per_slab) if d == batch[0] else
                       slice(None, None, step) if a in spatial else slice(None) for d, a in enumerate(axes))
        mi, ma = _percentiles(model, normalizer, volume.read(region), axes, net_axes)
        mis.append(mi)
        mas.append(ma)
    return np.concatenate(mis), np.concatenate(mas), True


def _per_plane_values(model, normalizer, volume, axes, net_axes):
    """``mi``/``ma`` of every Z plane (and sample), from a strided Y-X sample of each plane.

    Planes are read in slabs of Z so that a slab's sample holds about ``SAMPLE_VOXELS``
    voxels; a volume of at most that many voxels is read whole (then the values are exactly
    those of in-memory prediction).
    """
    z = axes.index("Z")
    others = int(np.prod([n for a, n in zip(axes, volume.shape) if a not in "ZYX"]))
    plane = [volume.shape[axes.index(a)] for a in "YX"]
    n_planes = volume.shape[z] * others
    step = sample_stride(plane, max(PLANE_SAMPLE_VOXELS, SAMPLE_VOXELS // n_planes))
    per_slab = max(1, SAMPLE_VOXELS // (int(np.prod([-(-n // step) for n in plane])) * others))
    mis, mas = [], []
    for z0 in range(0, volume.shape[z], per_slab):
        region = tuple(slice(z0, z0 + per_slab) if a == "Z" else slice(None, None, step) if a in "YX"
                       else slice(None) for a in axes)
        mi, ma = _percentiles(model, normalizer, volume.read(region), axes, net_axes)
        mis.append(mi)
        mas.append(ma)
    zn = net_axes.index("Z")
    if step > 1:
        logger.info("per-plane normalization from a sample of every %d-th voxel along Y and X of %s", step,
                    volume.name)
    return np.concatenate(mis, axis=zn), np.concatenate(mas, axis=zn)


def _percentiles(model, normalizer, img, axes, net_axes):
    x = model._to_net(img, axes, None)[0]
    n = copy.deepcopy(normalizer)
    n.before(x, net_axes)
    if not (np.all(np.isfinite(n.mi)) and np.all(np.isfinite(n.ma))):
        raise ValueError("the volume contains NaN/Inf values (found in the normalization sample); replace them "
                         "(e.g. with np.nan_to_num) before prediction")
    return np.asarray(n.mi), np.asarray(n.ma)


def _is_per_sample(model, normalizer, axes, volume, net_axes):
    """None: no mi/ma; True: one mi/ma per sample; False: one for the whole input; 'plane': per Z plane too."""
    n = copy.deepcopy(normalizer)
    cfg = model.config
    probe = np.random.default_rng(0).random((2,) + (model._net_block(),) * cfg.n_dim + (cfg.n_channel_in,))
    n.before(probe.astype(np.float32), net_axes)
    mi = getattr(n, "mi", None)
    if mi is None or getattr(n, "ma", None) is None:
        return None
    per_sample = bool(np.ndim(mi) == len(net_axes) and np.shape(mi)[0] == 2)
    if per_sample and "Z" in net_axes and np.shape(mi)[net_axes.index("Z")] == probe.shape[net_axes.index("Z")] > 1:
        return "plane"
    return per_sample


def block_normalizer_values(mi, ma, per_sample, grid, index):
    """The rows of per-sample ``mi``/``ma`` that belong to the samples of one block.

    With ``per_sample='plane'`` also the entries of the Z planes the block reads (core and
    context).
    """
    if mi is None or not per_sample:
        return mi, ma
    batch = [d for d, a in enumerate(grid.axes) if a not in grid.spatial and a != "C"]
    if batch:
        flat = np.arange(mi.shape[0]).reshape([grid.shape[d] for d in batch])
        core = grid.core_slices(index)
        rows = flat[tuple(core[d] for d in batch)].ravel()
        mi, ma = mi[rows], ma[rows]
    if per_sample == "plane":
        read, _ = grid.region(index)
        z = read[grid.axes.index("Z")]
        mi, ma = mi[:, z], ma[:, z]
    return mi, ma
