"""The multiscale pyramid of a blockwise prediction's OME-Zarr output: plan, metadata, chunk by chunk.

Level ``k`` of an image (``out.zarr/<k>``, ``out.zarr/iter<j>/<k>``) is the mean of level
``k-1`` over 2 pixels along Y and X, and along Z too where the voxel is nearly isotropic (its
Z size at most sqrt(2) times its in-plane size), until a plane of the smallest level fits in
``PLANE_SIZE`` x ``PLANE_SIZE``. T and C are never downsampled. Pixels beyond the last whole
window are dropped (dask's ``coarsen(..., trim_excess=True)``: a level has ``n // 2`` pixels
where the level above has ``n``), so level ``k`` equals the ``2**k`` mean-downsample of level 0
exactly, and its pixel ``i`` covers level-0 pixels ``[i * 2**k, (i + 1) * 2**k)``: its NGFF scale
is ``2**k`` voxels and its translation ``(2**k - 1) / 2`` voxels (the window's centre).

Levels are computed after level 0 is complete, one level after the other, chunk by chunk
(chunks as level 0's, clipped to the level): a chunk reads the region of the level above that
it averages (at most ``2**3`` chunks' worth of float32), so memory stays bounded by a few
output chunks. Each chunk sets its marker in ``levels_done/<image>/<k>`` after its data is
written, so a killed run resumes with the chunks not yet marked and ends with the same levels.

Metadata is OME-NGFF 0.4 (zarr format 2), as level 0 always was: napari-ome-zarr (0.10 reads
0.4 and 0.5; tested with 0.4 here), ome-zarr-py (0.4 and 0.5), neuroglancer (0.4 and 0.5) and
Fiji's BigDataViewer readers (n5-viewer, MoBIE) all read 0.4, while zarr v3 / NGFF 0.5 support
is recent or missing in the Java and web viewers. ome-zarr-py >= 0.12 defaults to 0.5 and logs "version mismatch"
when asked for 0.5 and given 0.4; it then reads 0.4 (pass ``fmt=FormatV04()`` to quieten it).
"""
import logging
import math

import numpy as np

logger = logging.getLogger(__name__)

#: the smallest level's planes fit in PLANE_SIZE x PLANE_SIZE
PLANE_SIZE = 512
#: Z is downsampled with Y and X when its voxel size is at most this times the in-plane one
ISOTROPIC = math.sqrt(2)
#: group holding the done markers of the levels' chunks
DONE = "levels_done"


def plan_levels(shape, axes, voxel_size, plane_size=None):
    """Downsampling factor per axis of every level (level 0 first: all ones).

    Parameters
    ----------
    shape : sequence of int
        Shape of level 0.
    axes : str
        Its axes (OME-Zarr order, a subset of ``'TCZYX'``).
    voxel_size : dict
        Size per spatial axis (``{'Z': 2.0, 'Y': 0.5, 'X': 0.5}``; missing axes count 1).
    plane_size : int or None
        Largest Y and X of the smallest level (default :data:`PLANE_SIZE`).

    Returns
    -------
    list of list of int
        ``factors[k][d]``: pixels of level 0 per pixel of level ``k`` along axis ``d``.
    """
    plane_size = PLANE_SIZE if plane_size is None else int(plane_size)
    n = {a: int(s) for a, s in zip(axes, shape)}
    vs = {a: float(voxel_size.get(a, 1.0)) for a in axes if a in "ZYX"}
    levels = [[1] * len(axes)]
    while any(n.get(a, 0) > plane_size for a in "YX"):
        step = {a: 2 if a in "YX" and n[a] >= 2 else 1 for a in axes}
        inplane = min(vs[a] for a in "YX" if a in vs) if any(a in vs for a in "YX") else 1.0
        if "Z" in n and n["Z"] >= 2 and vs["Z"] <= ISOTROPIC * inplane:
            step["Z"] = 2
        if all(f == 1 for f in step.values()):
            break
        for a, f in step.items():
            n[a] //= f
            if a in vs:
                vs[a] *= f
        levels.append([prev * step[a] for prev, a in zip(levels[-1], axes)])
    return levels


def level_shapes(shape, factors):
    """Shape of every level (``n // f`` per axis: the pixels beyond the last whole window are dropped)."""
    return [[int(s) // int(f) for s, f in zip(shape, fs)] for fs in factors]


def level_chunks(chunks, shapes):
    """Chunks of every level: level 0's, clipped to the level's shape."""
    return [[max(1, min(int(c), int(s))) for c, s in zip(chunks, sh)] for sh in shapes]


def datasets(record):
    """NGFF ``datasets`` of one image: path, scale and (for k >= 1) the window centre's translation."""
    axes = record["out_axes"]
    vs = [record["voxel_size"].get(a, 1.0) for a in axes]
    factors = record["pyramid"]["factors"] if record.get("pyramid") else [[1] * len(axes)]
    out = []
    for k, fs in enumerate(factors):
        ct = [{"type": "scale", "scale": [v * f for v, f in zip(vs, fs)]}]
        if k > 0:
            ct.append({"type": "translation", "translation": [v * (f - 1) / 2 for v, f in zip(vs, fs)]})
        out.append({"path": str(k), "coordinateTransformations": ct})
    return out


def create_levels(group, image, name, record):
    """Create levels 1.. of ``image`` (level 0 exists) and their done markers."""
    pyr = record.get("pyramid")
    if not pyr:
        return
    shapes = level_shapes(record["out_shape"], pyr["factors"])
    chunks = level_chunks(record["out_chunks"], shapes)
    done = group.require_group(DONE).require_group(name)
    for k in range(1, len(pyr["factors"])):
        image.create_array(str(k), shape=shapes[k], chunks=chunks[k], dtype="float32", fill_value=np.nan)
        done.create_array(str(k), shape=_grid(shapes[k], chunks[k]), chunks=(1,) * len(shapes[k]), dtype="uint8",
                          fill_value=0)


def images(group, record):
    """``[(name, zarr group of the image)]``: the last iterate, then ``iter<k>`` (``save_all_iterations``)."""
    out = [("last", group)]
    if record["save_all_iterations"]:
        out += [(f"iter{k}", group[f"iter{k}"]) for k in range(1, record["n_iter"])]
    return out


def todo(group, record):
    """``[(name, level, chunk index)]`` not yet marked done, level by level."""
    pyr = record.get("pyramid")
    if not pyr:
        return []
    out = []
    for k in range(1, len(pyr["factors"])):
        for name, _ in images(group, record):
            marks = group[DONE][name][str(k)][...]
            out += [(name, k, tuple(int(i) for i in idx)) for idx in np.argwhere(marks == 0)]
    return out


def chunk_source(record, k, index):
    """(slices of level ``k-1`` that chunk ``index`` of level ``k`` averages, slices it fills, step factors)."""
    factors = record["pyramid"]["factors"]
    shapes = level_shapes(record["out_shape"], factors)
    chunks = level_chunks(record["out_chunks"], shapes)
    step = [f // g for f, g in zip(factors[k], factors[k - 1])]
    dst = tuple(slice(i * c, min(n, (i + 1) * c)) for i, c, n in zip(index, chunks[k], shapes[k]))
    src = tuple(slice(s.start * f, s.stop * f) for s, f in zip(dst, step))
    return src, dst, step


def compute_chunk(store, path, record, name, k, index):
    """Average one chunk of level ``k`` from level ``k-1`` and write it, then its marker."""
    import zarr
    from dask.array.chunk import coarsen

    group = zarr.open_group(store, path=path, mode="r+", zarr_format=2)
    image = group if name == "last" else group[name]
    src, dst, step = chunk_source(record, k, index)
    block = image[str(k - 1)][src]
    axes = {d: f for d, f in enumerate(step) if f > 1}
    try:
        image[str(k)][dst] = coarsen(np.mean, block, axes, trim_excess=True).astype(np.float32, copy=False)
        group[DONE][name][str(k)][index] = 1
    except Exception as e:
        raise OSError(f"writing level {k} chunk {index} of {name} to the output failed ({type(e).__name__}: {e}); "
                      "the chunks written before are kept: fix the cause and run again with resume=True") from e
    return index


def build(group, record, client=None):
    """Compute every missing chunk of every level, level after level (here, or on ``client``'s workers)."""
    for _ in iter_build(group, record, client):
        pass


def iter_build(group, record, client=None):
    """:func:`build`, yielding ``BlockwiseProgress('pyramid', done, total)`` (chunks of all levels) after each
    chunk written, and once before the first; stopping between chunks leaves the levels resumable."""
    from tqdm.auto import tqdm

    from .blockwise import BlockwiseProgress

    pyr = record.get("pyramid")
    if not pyr:
        return
    jobs = todo(group, record)
    n_levels = len(pyr["factors"])
    total = sum(int(np.prod(group[DONE][name][str(k)].shape)) for k in range(1, n_levels)
                for name, _ in images(group, record))
    done = total - len(jobs)
    yield BlockwiseProgress("pyramid", done, total)
    if not jobs:
        return
    logger.info("pyramid: %d chunks to do in %d levels", len(jobs), n_levels - 1)
    with tqdm(total=total, initial=done, desc="pyramid", unit="chunk") as pbar:
        for k in range(1, n_levels):
            level = [(name, idx) for name, kk, idx in jobs if kk == k]
            if client is None:
                for name, idx in level:
                    compute_chunk(group.store, group.path, record, name, k, idx)
                    pbar.update(1)
                    done += 1
                    yield BlockwiseProgress("pyramid", done, total)
                continue
            from distributed import as_completed

            futures = [client.submit(compute_chunk, group.store, group.path, record, name, k, idx, pure=False)
                       for name, idx in level]
            try:
                for fut in as_completed(futures):  # level k+1 reads level k: wait for all of it
                    fut.result()
                    pbar.update(1)
                    done += 1
                    yield BlockwiseProgress("pyramid", done, total)
            finally:
                client.cancel(futures)


def _grid(shape, chunks):
    return [max(1, -(-int(n) // int(c))) for n, c in zip(shape, chunks)]
