"""The OME-Zarr output of blockwise prediction: arrays, NGFF 0.4 metadata, run record, done markers.

Layout of ``out.zarr`` (zarr format 2, OME-NGFF 0.4, readable by ``ome-zarr``, napari-ome-zarr,
neuroglancer and BigDataViewer; why 0.4: see :mod:`._pyramid`)::

    out.zarr/0             the last iterate; chunks = the blocks' cores
    out.zarr/1, 2, ...     its multiscale pyramid (unless ``pyramid=False``; see :mod:`._pyramid`)
    out.zarr/iter<k>/0     iterate k < n_iter (``save_all_iterations``), each an OME-Zarr image
                           with its own pyramid (iter<k>/1, ...)
    out.zarr/blocks_done   one uint8 chunk per block, set after the block's data is written
    out.zarr/levels_done/<image>/<level>   one uint8 chunk per chunk of a pyramid level, likewise
    .zattrs["deepcontrast"]  the run record: model, settings, source signature, normalization

A block counts as done only once its marker is written, after its data: a run that is killed
or whose store fails resumes from the markers, and every block writes chunks no other block
touches (no locks needed on a cluster).
"""
import json
import logging
import shutil
from pathlib import Path

import numpy as np

from ..internals.files import to_jsonable

logger = logging.getLogger(__name__)

#: OME-NGFF axis types
_AXIS_TYPE = {"T": "time", "C": "channel", "Z": "space", "Y": "space", "X": "space"}
#: settings that must agree for a run to be resumed
RESUME_KEYS = ("model", "axes", "n_iter", "block_size", "context", "normalizer", "resizer", "source",
               "save_all_iterations", "out_shape", "physical", "background", "chosen", "pyramid")


def output_axes(axes, n_channel_out):
    """OME-Zarr order (time, channel, space) of the output's axes; refuses axes NGFF 0.4 cannot name."""
    out = axes if ("C" in axes or n_channel_out == 1) else axes + "C"
    bad = [a for a in out if a not in _AXIS_TYPE]
    if bad:
        raise ValueError(f"axes {axes!r}: OME-Zarr images have only T, C, Z, Y, X axes, not {''.join(bad)}; "
                         "call a sample axis T (e.g. 'TYX') or predict the samples separately")
    return "".join(sorted(out, key="TCZYX".index))


def open_output(output, record, *, resume, overwrite, source_path=None):
    """Create the output, or reopen it for resuming; return ``(group, record)`` (the stored record)."""
    import zarr

    path = Path(output) if isinstance(output, (str, Path)) else getattr(output, "root", None)
    path = None if path is None else Path(path)
    if path is not None and source_path is not None:
        check_not_nested(path, Path(source_path))
    path = path if isinstance(output, (str, Path)) else None
    if path is not None and path.exists():
        if overwrite:
            _remove_zarr(path)
        else:
            return _reopen(zarr.open_group(str(path), mode="r+"), record, resume, path)
    elif path is None:
        try:
            group = zarr.open_group(output, mode="r+", zarr_format=2)
        except (FileNotFoundError, KeyError, ValueError):
            group = None
        if group is not None and "deepcontrast" in group.attrs and not overwrite:
            return _reopen(group, record, resume, output)
    group = zarr.open_group(str(path) if path is not None else output, mode="w", zarr_format=2)
    _create(group, record)
    return group, record


def source_location(source):
    """Where ``source`` lives on the local disk (file or folder), or None (in memory, remote)."""
    if isinstance(source, (str, Path)):
        return Path(source)
    if getattr(source, "_path", None) is not None:  # a Volume opened from a path
        return Path(source._path)
    root = getattr(getattr(source, "store", None), "root", None)  # a zarr array in a LocalStore
    return None if root is None else Path(root) / (getattr(source, "path", "") or "")


def check_not_nested(output, source):
    """Refuse an output that is the input, lies inside it, or contains it."""
    out, src = output.resolve(), source.resolve()
    if out == src:
        raise ValueError(f"output {output} is the input; choose another output path")
    if src in out.parents:
        raise ValueError(f"output {output} is inside the input {source}: writing it would change the input; "
                         f"choose an output outside {source}")
    if out in src.parents:
        raise ValueError(f"the input {source} is inside the output {output}: overwriting or resuming the output "
                         f"could destroy the input; choose an output that does not contain {source}")


def _reopen(group, record, resume, where):
    stored = group.attrs.get("deepcontrast")
    if stored is None:
        raise FileExistsError(f"output {where} exists and is not a deepcontrast prediction; choose another output "
                              "or pass overwrite=True to replace it")
    if not resume:
        raise FileExistsError(f"output {where} exists (a run of {stored['model']['name']}); pass resume=True to "
                              "finish it or overwrite=True to replace it")
    diff = {k: (stored.get(k), record.get(k)) for k in RESUME_KEYS if _comparable(stored.get(k)) != _comparable(record.get(k))}
    if diff:
        lines = "; ".join(f"{k}: output has {_short(a)}, this run has {_short(b)}" for k, (a, b) in diff.items())
        hint = (" The source changed since the run began: predict into a new output."
                if "source" in diff else " Pass the same settings, a new output, or overwrite=True.")
        if "pyramid" in diff and stored.get("pyramid") is None:
            hint += " (The output has no pyramid: resume it with pyramid=False / --no-pyramid.)"
        raise ValueError(f"output {where} is a run with other settings or another source, so it cannot be "
                         f"resumed ({lines}).{hint}")
    logger.info("resuming %s", where)
    return group, stored


def _comparable(v):
    return json.dumps(to_jsonable(v), sort_keys=True)


def _short(v, n=120):
    s = json.dumps(to_jsonable(v), sort_keys=True)
    return s if len(s) <= n else s[:n] + "..."


def _remove_zarr(path):
    if path.is_dir() and any((path / m).exists() for m in (".zgroup", ".zarray", "zarr.json")):
        shutil.rmtree(path)
    else:
        raise FileExistsError(f"output {path} exists and is not a zarr folder; overwrite=True replaces only zarr "
                              "outputs; remove it yourself or choose another output")


def _create(group, record):
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_multiscales_metadata

    from . import _pyramid

    shape, chunks, axes = record["out_shape"], record["out_chunks"], record["out_axes"]
    names = ["0"] + [f"iter{k}" for k in range(1, record["n_iter"])] * bool(record["save_all_iterations"])
    ome_axes = [dict(name=a.lower(), type=_AXIS_TYPE[a], **({"unit": "micrometer"} if _AXIS_TYPE[a] == "space"
                                                            and record["voxel_size_given"] else {})) for a in axes]
    for name in names:
        image = group if name == "0" else group.create_group(name)
        image.create_array("0", shape=shape, chunks=chunks, dtype="float32", fill_value=np.nan)
        _pyramid.create_levels(group, image, "last" if name == "0" else name, record)
        write_multiscales_metadata(image, _pyramid.datasets(record), fmt=FormatV04(), axes=ome_axes,
                                   name=record["name"])
    group.create_array("blocks_done", shape=record["grid"], chunks=(1,) * len(record["grid"]), dtype="uint8",
                       fill_value=0)
    group.attrs["deepcontrast"] = to_jsonable(record)


def iterate_arrays(group, record):
    """``{k: zarr array of iterate k}`` for the iterates this run writes."""
    n = record["n_iter"]
    out = {n: group["0"]}
    if record["save_all_iterations"]:
        out.update({k: group[f"iter{k}"]["0"] for k in range(1, n)})
    return out


def done_blocks(group):
    """Indices of the blocks whose marker is set."""
    return {tuple(int(i) for i in idx) for idx in np.argwhere(group["blocks_done"][...] > 0)}
