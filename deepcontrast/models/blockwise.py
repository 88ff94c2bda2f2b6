"""Out-of-core, resumable, distributed prediction of big volumes (a mixin of DeepContrast).

The volume is read and predicted block by block, each block with the context its
``n_iter`` iterations need (the measured tiling halo per iteration, times ``n_iter``), and
written to an OME-Zarr output whose chunks are the blocks, then (by default) averaged into a
multiscale pyramid chunk by chunk (:mod:`._pyramid`). Every block goes through the
same steps as in-memory prediction (:meth:`PredictMixin._to_net`, ``_plan``, ``_net_step``,
``_from_net``), normalized with percentiles computed once from a strided sample of the
whole volume by the normalizer in-memory prediction would use, so blocks agree at their
seams. Without a client the blocks run one after the other in this process (memory bounded
by one block); with a ``dask.distributed.Client`` they run on its workers, each of which
builds the model once; dask reschedules the blocks of a worker that dies.
"""
import hashlib
import json
import logging
import time
from typing import NamedTuple

import numpy as np

from ..internals.axes import axes_last, spatial_voxel_size
from ..internals.files import to_jsonable
from ..data.volume import open_volume
from . import _blockplan as plan
from . import _pyramid
from ._blockstore import done_blocks, iterate_arrays, open_output, output_axes, source_location
from .normalize import FixedPercentileNormalizer
from .choice import blend_iterates, check_chosen
from .predict import _DEFAULT_NORMALIZER, TILE_TOLERANCE
from .tiling import bytes_per_voxel

logger = logging.getLogger(__name__)

__all__ = ["BlockwiseMixin", "BlockwiseProgress"]

#: models built on workers, by weight fingerprint (each worker process builds a model once)
_WORKER_MODELS = {}
#: how many models this process has built for blocks (a worker restarted after a crash starts at 0)
_N_BUILT = 0


class BlockwiseProgress(NamedTuple):
    """Where a blockwise run is: ``done`` of ``total`` units of ``stage`` written (resumed ones included).

    ``stage`` is ``'blocks'`` (the prediction, one unit per block) or ``'pyramid'`` (the multiscale
    levels, one unit per chunk of any level).
    """

    stage: str
    done: int
    total: int


class BlockwiseMixin:
    """predict_blockwise and iter_predict_blockwise (mixed into DeepContrast)."""

    def predict_blockwise(self, source, axes, output, *, n_iter=1, block_size=None, normalizer=_DEFAULT_NORMALIZER,
                          client=None, resume=True, overwrite=False, save_all_iterations=False, voxel_size=None,
                          physical=True, background=None, chosen=None, pyramid=True):
        """Predict a volume of any size block by block into an OME-Zarr output (resumable).

        Parameters
        ----------
        source : numpy.ndarray, dask.array.Array, zarr.Array, str or pathlib.Path
            The raw volume: an array, a zarr array or OME-Zarr image folder, or a TIFF file (read
            lazily through ``tifffile``'s zarr store, BigTIFF included). Never modified.
        axes : str
            Axes of ``source`` (as in :meth:`predict`; an OME-Zarr output takes T, C, Z, Y, X).
        output : str, pathlib.Path or zarr store
            Where to write: a folder ``*.zarr`` (OME-NGFF 0.4 image, zarr format 2: the version napari-ome-zarr,
            neuroglancer and BigDataViewer all read), or a zarr store (e.g. ``zarr.storage.LocalStore``) holding
            the same layout. Never the input, inside it, or around it.
        n_iter : int
            Network applications, as in :meth:`predict`.
        block_size : sequence of int or None
            Core size of a block per axis of ``source`` (the output's chunks). Along the network's
            spatial axes it is rounded up to a multiple of ``2**unet_n_depth`` (with a warning);
            C is never split. Default: the largest blocks whose network call (with context) fits
            ``config.predict_memory_mb``.
        normalizer : csbdeep.data.Normalizer or None
            As in :meth:`predict` (default: the model's default percentile normalizer). Its
            percentiles are computed once from a strided sample of the whole volume (all of it up
            to 2**24 voxels; per plane for per-plane normalizers) and stored with the output.
        client : dask.distributed.Client or None
            Run the blocks on the client's workers; None runs them here, one after the other.
        resume : bool
            If ``output`` holds an unfinished (or finished) run with the same model, settings and
            source, compute only the blocks not yet written.
        overwrite : bool
            Replace an existing output (a zarr folder) instead.
        save_all_iterations : bool
            Also write iterates ``1 .. n_iter-1`` (to ``output/iter<k>``, each with its own pyramid).
        voxel_size : sequence of float or None
            Micrometres per pixel for the spatial axes (Z, Y, X in the order of ``axes``), written
            to the OME-Zarr metadata (default: 1 pixel, no unit).
        physical, background
            As in :meth:`predict`, for models whose prediction keeps iterates physical (a floor
            at the background, and each plane's light kept per iteration), so blocks then span
            whole Y-X planes (Z is still cut into blocks; ``physical=False`` lifts this).
        chosen : array_like or None
            Iterations per plane along Z, fractional (``report.chosen`` of
            :meth:`predict_adaptive` on the whole volume or on a sample of all its planes;
            ``np.interp`` a choice made on fewer planes): each output plane is the blend
            ``(1 - t) * iterate k + t * iterate k+1`` of its neighbouring iterates, iterate 0 being
            the raw (:func:`~deepcontrast.models.choice.blend_iterates`). The iterations computed are
            ``ceil(max(chosen))`` (``n_iter`` must be left at 1 or equal that); with
            ``save_all_iterations`` the plain iterates below it are written too.

        pyramid : bool
            Also write a multiscale pyramid (levels ``output/1, 2, ...`` in the NGFF ``multiscales``
            metadata), so viewers show a whole organ at once: level k is the ``2**k`` mean-downsample of
            level 0 in Y and X, and in Z where the voxel is nearly isotropic, down to planes of about
            512 x 512. Computed chunk by chunk after level 0 (memory: a few output chunks), resumable like
            level 0. ``False`` writes level 0 only (as before; an output without a pyramid is resumed
            only with ``pyramid=False``).

        :meth:`iter_predict_blockwise` does the same step by step, for progress and stopping between blocks.

        Returns
        -------
        zarr.Array
            The last iterate (float32, axes in OME-Zarr order: T, C, Z, Y, X).

        Raises
        ------
        ValueError
            Axes that do not match the source or the model, a bad ``block_size``, an output that is
            a run with other settings or of a changed source (names both), NaN/Inf in a block, a
            ``chosen`` that is not one finite value >= 0 per plane along Z.
        FileExistsError
            An existing output without ``resume``/``overwrite``.
        OSError
            Writing the output failed; the blocks written so far are kept (resume later).

        Examples
        --------
        >>> model.predict_blockwise('brain.tif', 'ZYX', 'brain_restored.ome.zarr', n_iter=2)  # doctest: +SKIP
        >>> from dask.distributed import Client, LocalCluster
        >>> client = Client(LocalCluster(n_workers=2, threads_per_worker=1))                     # doctest: +SKIP
        >>> model.predict_blockwise('brain.zarr', 'ZYX', 'out.zarr', client=client)             # doctest: +SKIP
        """
        steps = self.iter_predict_blockwise(
            source, axes, output, n_iter=n_iter, block_size=block_size, normalizer=normalizer, client=client,
            resume=resume, overwrite=overwrite, save_all_iterations=save_all_iterations, voxel_size=voxel_size,
            physical=physical, background=background, chosen=chosen, pyramid=pyramid)
        while True:
            try:
                next(steps)
            except StopIteration as done:
                return done.value

    def iter_predict_blockwise(self, source, axes, output, *, n_iter=1, block_size=None,
                               normalizer=_DEFAULT_NORMALIZER, client=None, resume=True, overwrite=False,
                               save_all_iterations=False, voxel_size=None, physical=True, background=None,
                               chosen=None, pyramid=True):
        """:meth:`predict_blockwise` step by step: yields a :class:`BlockwiseProgress` after each block and
        pyramid chunk written (and once as each stage starts), so a caller can show progress and stop.

        Parameters, output and errors are those of :meth:`predict_blockwise`; the generator's return value
        (``StopIteration.value``) is its result. Stopping (no further ``next``; ``close()`` ends the generator)
        ends the run between blocks: every block yielded so far is written and marked done, so the output is
        resumable (the same call with ``resume=True`` computes only the rest and ends with the output an
        uninterrupted run writes). With a ``client``, ``close()`` cancels the blocks not yet done.

        Examples
        --------
        >>> for p in model.iter_predict_blockwise('brain.tif', 'ZYX', 'out.ome.zarr'):  # doctest: +SKIP
        ...     print(f"{p.stage}: {p.done} of {p.total}")
        ...     if stop_requested():
        ...         break   # out.ome.zarr is resumable
        """
        if isinstance(n_iter, bool) or not isinstance(n_iter, (int, np.integer)) or n_iter < 1:
            raise ValueError(f"n_iter must be an integer >= 1 (number of network applications), got {n_iter!r}")
        vol = open_volume(source)
        axes = self._check_volume_axes(vol, axes)
        if chosen is not None:
            chosen, n_iter = check_chosen(chosen, vol, axes, self.config, n_iter)
        if normalizer is _DEFAULT_NORMALIZER:
            normalizer = self._default_normalizer()
        from csbdeep.data import PadAndCropResizer

        normalizer, resizer = self._check_normalizer_resizer(normalizer, PadAndCropResizer())
        physical = bool(physical) and hasattr(self, "_floor")  # models with physical iterates
        grid = self._block_grid(vol, axes, n_iter, block_size, whole_samples=physical)
        record = self._run_record(vol, axes, grid, n_iter, normalizer, resizer, save_all_iterations, voxel_size)
        record.update(physical=physical, background=None if background is None else float(background),
                      chosen=None if chosen is None else chosen.tolist())
        record["pyramid"] = {"factors": _pyramid.plan_levels(record["out_shape"], record["out_axes"],
                                                             record["voxel_size"])} if pyramid else None
        group, record = open_output(output, record, resume=resume, overwrite=overwrite,
                                    source_path=source_location(source))
        if record.get("mi") is None and record["normalizer"]["fixed"]:
            mi, ma, per_sample = plan.global_normalizer_values(self, vol, axes, normalizer)
            if mi is None:
                raise ValueError(f"normalizer {type(normalizer).__name__} has percentiles but sets no mi/ma; "
                                 "give a csbdeep PercentileNormalizer (or subclass) or NoNormalizer")
            record.update(mi=mi.tolist(), ma=ma.tolist(), per_sample=per_sample)
            group.attrs["deepcontrast"] = to_jsonable(record)
        todo = [i for i in grid.indices() if i not in done_blocks(group)]
        logger.info("%s: %d of %d blocks to do (block %s, context %s)", vol.name, len(todo), len(grid), grid.core,
                    grid.context)
        job = _Job(grid, record, normalizer, resizer, group.store, group.path)
        if client is None:
            yield from _run_here(self, vol, job, todo)
        else:
            yield from _run_on_client(client, self, vol, job, todo)
        yield from _pyramid.iter_build(group, record, client)
        return iterate_arrays(group, record)[n_iter]

    # ----- planning -----------------------------------------------------------------------

    def _check_volume_axes(self, vol, axes):
        from csbdeep.utils import axes_check_and_normalize

        try:
            axes = axes_check_and_normalize(axes)
        except ValueError as e:
            raise ValueError(f"invalid axes {axes!r} for {vol.name}: {e}") from None
        if len(axes) != vol.ndim:
            raise ValueError(f"axes {axes!r} do not match {vol.name} with {vol.ndim} dimensions {vol.shape}; "
                             "give one letter per dimension, e.g. 'ZYX'")
        probe = np.zeros([n if a == "C" else 1 for a, n in zip(axes, vol.shape)], np.float32)
        self._to_net(probe, axes, None)  # the model's own checks: spatial axes present, channels
        block = self._net_block()
        for a in self.config.axes.replace("C", ""):
            n = vol.shape[axes.index(a)]
            if n < block:
                raise ValueError(f"{vol.name} has {n} pixels along {a} but the network needs at least {block} "
                                 "(2**unet_n_depth); use a model with smaller unet_n_depth")
        return axes

    def _block_grid(self, vol, axes, n_iter, block_size, whole_samples=False):
        spatial = self.config.axes.replace("C", "")
        halo = self.tile_halo(TILE_TOLERANCE / n_iter)
        context = {a: n_iter * h for a, h in zip(spatial, halo)}
        block = self._net_block()
        if block_size is None:
            bpv = bytes_per_voxel(self.config.unet_n_first, self.config.n_channel_in)
            budget = float(self.config.predict_memory_mb) * 2**20
            core = plan.default_block_size(vol.shape, axes, spatial, block, context, bpv, budget)
        else:
            core = plan.check_block_size(block_size, vol.shape, axes, spatial, block)
        if whole_samples:
            core = plan.whole_samples(core, vol.shape, axes, spatial, block, self.config.n_dim)
        return plan.BlockGrid(vol.shape, axes, spatial, core, context, block)

    def _run_record(self, vol, axes, grid, n_iter, normalizer, resizer, save_all, voxel_size):
        cfg = self.config
        out_axes = output_axes(axes, cfg.n_channel_out)
        in_axes = axes if "C" in axes or cfg.n_channel_out == 1 else axes + "C"
        full = dict(zip(in_axes, vol.shape + ((cfg.n_channel_out,) if in_axes != axes else ())))
        if "C" in axes:
            full["C"] = cfg.n_channel_out
        chunks = dict(zip(in_axes, grid.core + ((cfg.n_channel_out,) if in_axes != axes else ())))
        chunks.update({a: min(full[a], chunks[a]) if a not in grid.spatial else chunks[a] for a in chunks})
        if "C" in chunks:
            chunks["C"] = full["C"]
        vs = dict(zip([a for a in axes if a in "ZYX"], spatial_voxel_size(axes, voxel_size)))
        fixed = hasattr(normalizer, "pmin")
        return {
            "name": getattr(self, "name", None) or "deepcontrast",
            "model": {"name": getattr(self, "name", None), "weights": _weights_fingerprint(self)},
            "axes": axes, "out_axes": out_axes, "n_iter": int(n_iter),
            "out_shape": [full[a] for a in out_axes], "out_chunks": [chunks[a] for a in out_axes],
            "block_size": list(grid.core), "context": grid.context, "grid": list(grid.counts),
            "normalizer": {"class": type(normalizer).__name__, "fixed": fixed,
                           **{k: getattr(normalizer, k) for k in ("pmin", "pmax") if fixed}},
            "resizer": type(resizer).__name__, "source": vol.signature(),
            "save_all_iterations": bool(save_all), "voxel_size": vs, "voxel_size_given": voxel_size is not None,
            "mi": None, "ma": None, "per_sample": False,
        }

    # ----- one block ----------------------------------------------------------------------

    def _predict_block(self, vol, job, index):
        """Iterates ``{k: core of block index}`` (source axes, plus C if the model adds one)."""
        read, inner = job.grid.region(index)
        img = vol.read(read)
        if np.issubdtype(img.dtype, np.floating) and not np.all(np.isfinite(img)):
            raise ValueError(f"block {index} (or its context {_fmt(read)}) of {vol.name} contains NaN/Inf values; "
                             "replace them before prediction")
        cfg = self.config
        net_axes = "S" + cfg.axes
        normalizer = job.block_normalizer(index)
        resizer = job.new_resizer()
        x, undo, _ = self._to_net(img, job.grid.axes, None)
        x = normalizer.before(x, net_axes)
        x = resizer.before(x, net_axes, (1,) + (self._net_block(),) * cfg.n_dim + (1,))
        x = x.astype(np.float32, copy=False)
        tiles, max_batch, halo = self._plan(x.shape, None, TILE_TOLERANCE / job.n_iter)
        step = {"floor": self._floor(normalizer, job.background, x.shape, net_axes, resizer)} if job.physical else {}
        out = {}
        for k in range(1, job.n_iter + 1):
            x = self._net_step(x, tiles, halo, max_batch, None, **step)
            if k in job.iterates or job.chosen is not None:
                y = undo(self._from_net(x, net_axes, normalizer, resizer))
                out[k] = y[inner + (slice(None),) * (y.ndim - len(inner))]
        if job.chosen is not None:  # each plane the blend of its neighbouring iterates (iterate 0: the raw)
            z = job.grid.core_slices(index)[job.grid.axes.index("Z")]
            blended = blend_iterates(img[inner], [out[k] for k in sorted(out)], job.chosen[z], job.grid.axes)
            out = {k: y for k, y in out.items() if k in job.iterates and k < job.n_iter}
            out[job.n_iter] = blended
        return out


class _Job:
    """What every block needs (picklable, sent to workers once)."""

    def __init__(self, grid, record, normalizer, resizer, store, path):
        self.grid, self.n_iter, self.resizer, self.store, self.path = grid, record["n_iter"], resizer, store, path
        self.iterates = set(range(1, self.n_iter + 1)) if record["save_all_iterations"] else {self.n_iter}
        self.out_axes, self.in_axes = record["out_axes"], _in_axes(grid.axes, record["out_axes"])
        self.normalizer = normalizer
        self.fixed = record["normalizer"]["fixed"]
        self.mi = None if record["mi"] is None else np.asarray(record["mi"], np.float32)
        self.ma = None if record["ma"] is None else np.asarray(record["ma"], np.float32)
        self.per_sample = record["per_sample"]
        self.physical, self.background = record["physical"], record["background"]
        self.n_blocks = len(grid)
        self.chosen = None if record.get("chosen") is None else np.asarray(record["chosen"], float)

    def block_normalizer(self, index):
        if not self.fixed:
            return self.normalizer
        mi, ma = plan.block_normalizer_values(self.mi, self.ma, self.per_sample, self.grid, index)
        n = self.normalizer
        return FixedPercentileNormalizer(mi, ma, pmin=n.pmin, pmax=n.pmax, do_after=n.do_after, dtype=n.dtype,
                                         **n.kwargs)

    def new_resizer(self):
        import copy

        return copy.deepcopy(self.resizer)

    def write(self, index, iterates):
        """Write a block's iterates, then its marker (so a marker means the data is complete)."""
        import zarr

        group = zarr.open_group(self.store, path=self.path, mode="r+", zarr_format=2)
        core = dict(zip(self.grid.axes, self.grid.core_slices(index)))
        sl = tuple(core.get(a, slice(None)) if a != "C" else slice(None) for a in self.out_axes)
        for k, y in iterates.items():
            arr = group["0"] if k == self.n_iter else group[f"iter{k}"]["0"]
            arr[sl] = axes_last(y, self.in_axes, self.out_axes)[0]
        group["blocks_done"][index] = 1


def _in_axes(axes, out_axes):
    return axes if len(axes) == len(out_axes) else axes + "C"


def _fmt(region):
    return "[" + ", ".join(f"{s.start}:{s.stop}" for s in region) + "]"


def _weights_fingerprint(model):
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(to_jsonable(vars(model.config)), sort_keys=True).encode())
    for w in model.keras_model.get_weights():
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()


def _do_block(model, vol, job, index):
    iterates = model._predict_block(vol, job, index)
    try:
        job.write(index, iterates)
    except Exception as e:
        raise OSError(f"writing block {index} to the output failed ({type(e).__name__}: {e}); the blocks "
                      "written before are kept: fix the cause and run again with resume=True to compute only the "
                      "missing blocks") from e
    return index


def _run_here(model, vol, job, todo):
    from tqdm.auto import tqdm

    done = job.n_blocks - len(todo)
    yield BlockwiseProgress("blocks", done, job.n_blocks)
    with tqdm(total=job.n_blocks, initial=done, desc="predict blocks", unit="block", disable=not todo) as pbar:
        for index in todo:
            _do_block(model, vol, job, index)
            pbar.update(1)
            done += 1
            yield BlockwiseProgress("blocks", done, job.n_blocks)


def _model_payload(model):
    """What a worker needs to build the model: config, weights, measured halos (by fingerprint)."""
    return {"key": _weights_fingerprint(model), "class": type(model), "config": model.config,
            "weights": model.keras_model.get_weights(), "halo_cache": dict(model._halo_cache)}


def _worker_model(payload):
    global _N_BUILT
    key = payload["key"]
    if key not in _WORKER_MODELS:
        _N_BUILT += 1
        t0 = time.time()
        model = payload["class"](payload["config"], name="blockwise", basedir=None)
        model.keras_model.set_weights(payload["weights"])
        model._halo_cache.update(payload["halo_cache"])
        _WORKER_MODELS.clear()
        _WORKER_MODELS[key] = model
        logger.info("built model %s on this worker in %.1f s", key, time.time() - t0)
    return _WORKER_MODELS[key]


def _block_on_worker(payload, vol, job, index):
    return _do_block(_worker_model(payload), vol, job, index)


def _run_on_client(client, model, vol, job, todo):
    from distributed import as_completed
    from tqdm.auto import tqdm

    done = job.n_blocks - len(todo)
    yield BlockwiseProgress("blocks", done, job.n_blocks)
    payload, vol_f, job_f = client.scatter([_model_payload(model), vol, job], broadcast=True)
    futures = [client.submit(_block_on_worker, payload, vol_f, job_f, index, key=f"deepcontrast-block-{_key(index)}-"
                             f"{job.path or ''}{id(job)}", pure=False) for index in todo]
    logger.info("%d blocks submitted to %s (dashboard: %s)", len(futures), client, client.dashboard_link)
    try:
        with tqdm(total=job.n_blocks, initial=done, desc="predict blocks", unit="block", disable=not todo) as pbar:
            for fut in as_completed(futures):
                fut.result()
                pbar.update(1)
                done += 1
                yield BlockwiseProgress("blocks", done, job.n_blocks)
    finally:  # also when the caller stops iterating: the blocks not yet done are cancelled
        client.cancel(futures)


def _key(index):
    return "-".join(str(i) for i in index)

