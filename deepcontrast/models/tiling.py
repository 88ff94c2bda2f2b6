"""Fast tiled prediction with a halo measured on the network itself.

CSBDeep pads every tile with a halo as wide as the network's *theoretical* receptive field
(43 px for its default 2D net) and predicts the tiles one by one. The network's *effective*
receptive field is much smaller: pixels far from an output pixel have (numerically) no
influence on it. :func:`measure_halo` finds the smallest halo for which a tile core agrees
with the untiled prediction to within a tolerance (relative to the output range), and
:func:`predict_tiled` predicts equally-sized tiles in batches into one preallocated output.

How the tolerance is measured (see :func:`measure_halo`): on probe images (uniform noise in
[0, 1] and bright sparse spots on a dim background, i.e. normalized fluorescence-like input),
the network output of a small tile core is compared with the untiled output of the whole probe,
for tile windows that leave ``h`` pixels of context on *every* side of the core (the worst case
of a real tile, whose core touches at most the window's edges at distance ``h``). The chosen
halo is the smallest multiple of the network's block size for which this deviation, divided by
the untiled output range, is below ``safety * tol`` for it and every larger candidate
(``safety = 0.5``). Over ``n_iter`` iterations the tiling errors can add up, so iterative
prediction uses ``tol / n_iter`` per iteration (which assumes the network does not amplify
small input differences; it held in the tests).
"""
import logging
import math

import numpy as np

logger = logging.getLogger(__name__)

__all__ = ["measure_halo", "halo_deviations", "choose_halo", "tile_layout", "auto_n_tiles", "predict_tiled", "bytes_per_voxel"]


def bytes_per_voxel(n_first, n_channel_in=1):
    """Rough peak memory (bytes) one network call needs per input voxel (float32 activations).

    A U-Net's full-resolution level holds a few feature maps of ``n_first`` channels (plus the
    skip concatenation) at once; coarser levels add a geometric fraction. 8 maps is a
    conservative round figure for CSBDeep's nets: for the default net (``n_first=32``, 1032
    bytes/voxel by this formula) the peak resident memory of one CPU call grew by 750
    bytes/voxel in 2D (1024x1024) and 680 in 3D (32x256x256).
    """
    return 4 * (8 * int(n_first) + 2 * int(n_channel_in))


def tile_layout(n, n_tiles, halo, block):
    """Windows of one axis: equal-size windows, cores that tile ``[0, n)``.

    Parameters
    ----------
    n : int
        Axis length (a multiple of ``block``).
    n_tiles : int
        Requested number of tiles (>= 1).
    halo : int
        Context (pixels) on each side of a core (a multiple of ``block``).
    block : int
        Granularity the network needs (``2**unet_n_depth``).

    Returns
    -------
    window : int
        Size of every window (multiple of ``block``, at most ``n``).
    tiles : list of (int, int, int)
        ``(window_start, core_start, core_stop)`` per tile; each core lies at least ``halo``
        pixels inside its window except where it touches the image border.
    """
    core = int(math.ceil(n / max(1, int(n_tiles)) / block)) * block
    core = max(core, block)
    window = min(n, core + 2 * halo)
    tiles = []
    for cs in range(0, n, core):
        ce = min(n, cs + core)
        ws = min(max(cs - halo, 0), n - window)
        tiles.append((ws, cs, ce))
    return window, tiles


def auto_n_tiles(spatial_shape, halo, block, bytes_per_vox, budget_bytes):
    """Fewest tiles (doubling the axis with the largest core) whose window fits the budget."""
    n_tiles = [1] * len(spatial_shape)

    def _mem(nt):
        return bytes_per_vox * np.prod([tile_layout(n, t, h, block)[0]
                                        for n, t, h in zip(spatial_shape, nt, halo)], dtype=float)

    while _mem(n_tiles) > budget_bytes:
        cores = [n / t if n / t >= 2 * block else 0 for n, t in zip(spatial_shape, n_tiles)]
        i = int(np.argmax(cores))
        if cores[i] == 0:
            logger.warning("cannot split tiles further; predicting with n_tiles=%s above the memory budget", n_tiles)
            break
        n_tiles[i] *= 2
    return tuple(n_tiles)


def _probes(shape, n_channel, rng):
    rng = np.random.default_rng(rng)
    noise = rng.random(shape + (n_channel,), dtype=np.float32)
    spots = np.full(shape + (n_channel,), 0.1, np.float32)
    idx = tuple(rng.integers(0, s, size=max(4, int(np.prod(shape)) // 200)) for s in shape)
    spots[idx] = rng.uniform(1, 2, size=len(idx[0])).astype(np.float32)[:, None]
    return np.stack([noise, spots])


def halo_deviations(predict_fn, n_dim, block, max_halo, *, n_channel_in=1, rng=0):
    """Relative deviation of a tile core from the untiled output, for each candidate halo.

    Parameters
    ----------
    predict_fn : callable
        Maps a float32 batch ``(B, *spatial, C)`` to the network output.
    n_dim : int
        Number of spatial axes (2 or 3).
    block : int
        Size granularity of the network input (``2**unet_n_depth``).
    max_halo : int
        Upper bound, e.g. CSBDeep's theoretical ``tile_overlap`` (rounded up to ``block``).
    n_channel_in : int
        Input channels.
    rng : None, int or numpy.random.Generator
        Seed of the probe images.

    Returns
    -------
    dict
        ``{halo: max abs deviation / untiled output range}`` for ``halo = 0, block, ...``
        up to ``max_halo`` rounded up to ``block`` (where the deviation is zero up to round-off).
    """
    H = int(math.ceil(max_halo / block)) * block
    L = 2 * H + block
    x = _probes((L,) * n_dim, n_channel_in, rng)
    full = np.asarray(predict_fn(x))
    span = float(full.max() - full.min()) or 1.0
    core = (slice(None),) + (slice(H, H + block),) * n_dim
    ref = full[core]
    devs = {}
    for h in range(0, H + 1, block):
        win = (slice(None),) + (slice(H - h, H + block + h),) * n_dim
        out = np.asarray(predict_fn(np.ascontiguousarray(x[win])))
        inner = (slice(None),) + (slice(h, h + block),) * n_dim
        devs[h] = float(np.abs(out[inner] - ref).max()) / span
    return devs


def choose_halo(devs, tol):
    """Smallest candidate halo whose deviation, and that of every larger one, is <= ``tol``."""
    halo = max(devs)
    for h in sorted(devs, reverse=True):
        if devs[h] > tol:
            break
        halo = h
    return halo


def measure_halo(predict_fn, n_dim, block, max_halo, *, n_channel_in=1, tol=0.01, safety=0.5, rng=0):
    """Smallest halo whose tile cores match the untiled output within ``safety * tol``.

    Parameters
    ----------
    predict_fn, n_dim, block, max_halo, n_channel_in, rng
        As in :func:`halo_deviations`.
    tol : float
        Allowed max abs deviation of tiled from untiled output, relative to the output range.
    safety : float
        The halo is chosen for ``safety * tol`` on the probes, leaving margin for real images
        (on the default CARE nets the probes over-estimated the deviation on fluorescence-like
        images by 1.3-1.6x).

    Returns
    -------
    halo : int
        Multiple of ``block``, at most ``max_halo`` rounded up to ``block``.
    deviations : dict
        ``{halo: relative max deviation}`` for every candidate (for reporting).

    Examples
    --------
    >>> from scipy import ndimage
    >>> box = lambda x: ndimage.uniform_filter(x, size=(1, 11, 11, 1), mode='constant')
    >>> measure_halo(box, 2, 4, 20)[0]
    8
    """
    devs = halo_deviations(predict_fn, n_dim, block, max_halo, n_channel_in=n_channel_in, rng=rng)
    halo = choose_halo(devs, safety * tol)
    logger.debug("measured halo %d (theoretical %d); relative deviations %s", halo, max_halo, devs)
    return halo, devs


def predict_tiled(predict_fn, x, n_tiles, halo, block, *, n_channel_out, max_batch=1, out=None, pbar=None):
    """Predict ``x`` (``(B, *spatial, C)``, spatial sizes multiples of ``block``) tile by tile.

    All windows have the same shape (edge windows are shifted inwards instead of padded), so
    the network is traced once; up to ``max_batch`` windows go through one call, and every call
    has the same shape: the windows are spread evenly over the fewest calls, and the last batch
    is filled up (with windows of the previous one, whose outputs are discarded), so fewer
    windows than calls are wasted. Each core is written straight into the preallocated output.

    Parameters
    ----------
    predict_fn : callable
        Maps a float32 batch ``(b, *window, C)`` to ``(b, *window, n_channel_out)``.
    x : numpy.ndarray
        Normalized input, float32.
    n_tiles : sequence of int
        Tiles per spatial axis.
    halo : sequence of int
        Halo per spatial axis (multiples of ``block``).
    block : int
        Size granularity of the network.
    n_channel_out : int
        Channels of the network output.
    max_batch : int
        Most windows per network call.
    out : numpy.ndarray or None
        Output array to fill (float32, ``x.shape[:-1] + (n_channel_out,)``).
    pbar : tqdm or None
        Progress bar updated per window.

    Returns
    -------
    numpy.ndarray
    """
    spatial = x.shape[1:-1]
    if out is None:
        out = np.empty(x.shape[:-1] + (n_channel_out,), np.float32)
    if all(t == 1 for t in n_tiles) and x.shape[0] <= max_batch:
        out[...] = predict_fn(x)
        if pbar is not None:
            pbar.update(x.shape[0])
        return out
    layouts = [tile_layout(n, t, h, block) for n, t, h in zip(spatial, n_tiles, halo)]
    window = tuple(w for w, _ in layouts)
    jobs = [(b,) + combo for b in range(x.shape[0]) for combo in np.ndindex(*[len(t) for _, t in layouts])]
    n_jobs = len(jobs)
    n_calls = -(-n_jobs // max(1, int(max_batch)))
    bs = -(-n_jobs // n_calls)
    buf = np.empty((bs,) + window + (x.shape[-1],), np.float32)
    for start in range(0, n_jobs, bs):
        batch = jobs[start:start + bs]
        for k, (b, *combo) in enumerate(batch):
            sl = tuple(slice(layouts[a][1][i][0], layouts[a][1][i][0] + window[a]) for a, i in enumerate(combo))
            buf[k] = x[(b,) + sl]
        y = np.asarray(predict_fn(buf))
        for k, (b, *combo) in enumerate(batch):
            src, dst = [k], [b]
            for a, i in enumerate(combo):
                ws, cs, ce = layouts[a][1][i]
                src.append(slice(cs - ws, ce - ws))
                dst.append(slice(cs, ce))
            out[tuple(dst)] = y[tuple(src)]
        if pbar is not None:
            pbar.update(len(batch))
    return out
