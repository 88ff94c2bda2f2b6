"""``deepcontrast predict ... -o OUT.zarr``: blockwise prediction of a big volume (optionally on dask)."""
import contextlib
import logging
from pathlib import Path

log = logging.getLogger(__name__)

#: output names that select blockwise prediction
ZARR_SUFFIXES = (".zarr", ".ome.zarr")


def is_zarr_output(path):
    return str(path).rstrip("/").lower().endswith(ZARR_SUFFIXES)


def add_arguments(p):
    g = p.add_argument_group("big volumes (output OUT.zarr / OUT.ome.zarr: predicted block by block)")
    g.add_argument("--block-size", metavar="N,N,N", help="block size per input axis, e.g. 64,1024,1024 "
                   "(default: the largest that fits --memory-mb)")
    where = g.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="run on a local dask cluster of N worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="run on a running dask scheduler, e.g. tcp://host:8786")
    g.add_argument("--resume", action="store_true", help="finish an interrupted run into the same output "
                   "(only blocks not yet written are computed)")
    g.add_argument("--voxel-size", metavar="Z,Y,X", help="um per pixel of the spatial axes, for the OME-Zarr metadata")
    g.add_argument("--no-pyramid", dest="pyramid", action="store_false",
                   help="write full resolution only (default: also a multiscale pyramid, 2x mean-downsampled levels "
                        "down to about 512x512 planes, so napari, neuroglancer and BigDataViewer open it at once)")


def run(args, model, parse_floats):
    """Predict ``args.inputs[0]`` into the zarr output ``args.output_dir``."""
    if len(args.inputs) != 1:
        raise ValueError(f"a zarr output ({args.output_dir}) takes one input volume, got {len(args.inputs)}")
    if str(args.n_tiles).lower() != "auto":
        raise ValueError("--n-tiles does not apply to a zarr output; use --block-size")
    src = args.inputs[0]
    if not args.axes:
        raise ValueError("pass --axes for a zarr output, e.g. --axes ZYX")
    block_size = None if args.block_size is None else tuple(int(v) for v in parse_floats(args.block_size, "--block-size"))
    voxel_size = None if args.voxel_size is None else parse_floats(args.voxel_size, "--voxel-size")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    with _client(args) as client:
        out = model.predict_blockwise(src, args.axes.upper(), args.output_dir, n_iter=args.n_iter,
                                      block_size=block_size, client=client, resume=args.resume,
                                      overwrite=args.overwrite, save_all_iterations=args.save_all_iterations,
                                      voxel_size=voxel_size, physical=getattr(args, "physical", True),
                                      background=getattr(args, "background", None),
                                      pyramid=getattr(args, "pyramid", True))
    levels = "" if not getattr(args, "pyramid", True) else " and its pyramid"
    print(f"{src} -> {Path(args.output_dir)} (OME-Zarr, shape {out.shape}{levels})")
    return 0


@contextlib.contextmanager
def _client(args):
    if args.workers is None and args.scheduler is None:
        yield None
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--workers/--scheduler need dask.distributed: pip install 'deepcontrast[big]'") from None
    if args.scheduler is not None:
        with Client(args.scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True) as cluster, Client(cluster) as client:
        log.info("local dask cluster with %d workers; dashboard %s", args.workers, client.dashboard_link)
        yield client
