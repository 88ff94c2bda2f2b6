"""Big layers in the Restore widget: blockwise prediction into an OME-Zarr, shown as a multiscale layer.

A layer with more than :data:`BIG_VOXELS` voxels at full resolution (typically a multiscale
OME-Zarr opened with napari-ome-zarr, or a dask array) is never loaded into memory: its
full-resolution array goes to :meth:`~deepcontrast.models.blockwise.BlockwiseMixin.predict_blockwise`
as it is (read block by block), the output is an OME-Zarr with its multiscale pyramid, and the
result is added as a lazy multiscale layer with the raw layer's scale.
"""
from pathlib import Path

import numpy as np

__all__ = ["BIG_VOXELS", "is_big", "full_resolution", "check_zarr_output", "multiscale_levels", "progress_text",
           "cancelled_text"]

#: layers with more voxels than this are restored block by block into an OME-Zarr (64 Mvoxel: 256 MB float32)
BIG_VOXELS = 2**26


def full_resolution(layer):
    """The layer's full-resolution array as it is (numpy, dask or zarr; nothing is loaded)."""
    return layer.data[0] if getattr(layer, "multiscale", False) else layer.data


def is_big(layer):
    """Whether the layer's full resolution has more than :data:`BIG_VOXELS` voxels."""
    return int(np.prod(full_resolution(layer).shape, dtype=float)) > BIG_VOXELS


def check_zarr_output(path, layer):
    """The OME-Zarr output path for a big layer, or a ValueError naming the problem and the fix."""
    text = str(path or "").strip()
    if not text or text == ".":
        raise ValueError(f"layer {layer.name!r} is big ({'x'.join(map(str, full_resolution(layer).shape))}): "
                         "choose an OME-Zarr output ('big layers to', e.g. restored.ome.zarr) to restore it "
                         "block by block")
    out = Path(text).expanduser()
    if not out.name.lower().endswith(".zarr"):
        raise ValueError(f"big layers are restored into an OME-Zarr folder: name it *.zarr or *.ome.zarr, "
                         f"not {out.name!r}")
    return out


def multiscale_levels(path, image=""):
    """The levels of the OME-Zarr image at ``path`` (``image``: e.g. ``'iter1'``) as lazy zarr arrays."""
    import zarr

    group = zarr.open_group(str(path), mode="r")
    group = group[image] if image else group
    return [group[d["path"]] for d in group.attrs["multiscales"][0]["datasets"]]


def run_blockwise(path, source, axes, n_iter, out, voxel_size, cache):
    """Worker for a big layer: load the model, predict block by block into ``out`` (resumed if it is
    an unfinished run of the same settings), return ``out``. Yields 0 before loading, 1 before predicting,
    then a :class:`~deepcontrast.models.blockwise.BlockwiseProgress` after each block and pyramid chunk
    written: a cancel (the worker stops at its next yield) ends the run between blocks, the output resumable."""
    from ._restore import cached_model

    yield 0
    model = cached_model(path, axes, cache)
    yield 1
    yield from model.iter_predict_blockwise(source, axes, out, n_iter=n_iter, voxel_size=voxel_size, resume=True)
    return out


def progress_text(p):
    """What the widget says while a big layer is restored: ``'predicting blocks: 3 of 12'``."""
    what = {"blocks": ("predicting blocks", ""), "pyramid": ("multiscale pyramid", " chunks")}[p.stage]
    return f"{what[0]}: {p.done} of {p.total}{what[1]}"


def cancelled_text(p, out):
    """What the widget says after a big layer's run was cancelled (``p``: its last progress, or None)."""
    if p is None:
        return f"cancelled before the prediction started; nothing was written to {out} and no layer was added"
    where = f"after {p.done} of {p.total}" + {"blocks": " blocks", "pyramid": " pyramid chunks (all blocks done)"}[p.stage]
    return (f"cancelled {where}; no layer was added. What was written is kept in {out}: press Restore again "
            "with the same model, n_iter and output to resume from there")
