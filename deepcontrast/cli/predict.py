"""``deepcontrast predict``: apply a trained model (iteratively) to TIFF files, or to a big volume (zarr output)."""
import sys
import traceback
from pathlib import Path

from . import _blockwise
from ..internals.files import write_json
from ..internals.model_folder import check_model_folder
from ..internals.tiff import read_tiff, write_tiff
from ._common import check_output, parse_floats


def add_parser(sub):
    p = sub.add_parser(
        "predict",
        help="restore contrast of images with a trained model",
        description="Apply the model in MODEL_DIR to each input and write OUT_DIR/<name>_iter<N>.tif (float32). "
        "A file that fails is reported and skipped; the exit status is 1 if any failed. With -o OUT.zarr "
        "(or OUT.ome.zarr) the one input (TIFF, zarr or OME-Zarr, read lazily) is predicted block by block "
        "into an OME-Zarr image, resumably, optionally on a dask cluster.",
    )
    p.add_argument("model", metavar="MODEL_DIR", help="model folder, e.g. models/my_model")
    p.add_argument("inputs", metavar="IN.tif", nargs="+")
    p.add_argument("-o", "--output-dir", required=True, metavar="OUT_DIR",
                   help="output folder for TIFFs, or OUT.zarr / OUT.ome.zarr for blockwise prediction")
    p.add_argument("--axes", help="axes of the inputs, e.g. YX or ZYX (default: the model's axes)")
    p.add_argument("--n-iter", type=int, default=1, help="number of times the network is applied (default 1)")
    p.add_argument("--save-all-iterations", action="store_true", help="also write iterations 1..N-1")
    p.add_argument("--n-tiles", default="auto",
                   help="'auto' (fit the memory budget) or tiles per axis of the input, e.g. 1,4,4")
    p.add_argument("--memory-mb", type=float, default=None,
                   help="memory budget (MiB) per network call for --n-tiles auto (default: model config, 2048)")
    p.add_argument("--background", type=float, default=None,
                   help="intensity of no light in the inputs (camera offset); iterates never go below it "
                        "(default: the training data's background, 0 when unknown)")
    p.add_argument("--no-physical", dest="physical", action="store_false",
                   help="return the bare network output: no floor at the background, light not kept per "
                        "plane/volume (iterates may drift darker and below the background)")
    p.add_argument("--precision", choices=("auto", "float32", "bfloat16", "float16"), default=None,
                   help="precision of the network's computation (default: the model's own, config.precision)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    a = p.add_argument_group("depth-adaptive restoration (--adaptive: as much restoration per plane as the raw "
                             "data support)")
    a.add_argument("--adaptive", action="store_true",
                   help="predict iterations 1..--max-iter, check each against the raw through the forward model and "
                        "blend per plane the iterations the data support; writes OUT_DIR/<name>_adaptive.tif and the "
                        "choice (chosen iteration, restored depth and chi2 per iteration and plane, the rule) as "
                        "OUT_DIR/<name>.adaptive.json")
    a.add_argument("--max-iter", type=int, default=4, help="most iterations for --adaptive (default 4)")
    a.add_argument("--surface", choices=("first", "last"), default="first",
                   help="which end of Z is the tissue surface, for --adaptive (default first)")
    a.add_argument("--depth", type=float, default=0.0,
                   help="depth (um) of the surface-end slice (of the image, in 2D), for --adaptive (default 0)")
    _blockwise.add_arguments(p)
    p.set_defaults(func=run)


def parse_n_tiles(text, n_axes):
    """``'auto'`` -> None, ``'1,4,4'`` -> (1, 4, 4) (one entry per axis)."""
    if text is None or str(text).strip().lower() == "auto":
        return None
    try:
        tiles = tuple(int(t) for t in str(text).split(","))
    except ValueError:
        raise ValueError(f"--n-tiles must be 'auto' or integers like 1,4,4, got {text!r}") from None
    if len(tiles) != n_axes or any(t < 1 for t in tiles):
        raise ValueError(f"--n-tiles needs {n_axes} integers >= 1 (one per input axis), got {text!r}")
    return tiles


def output_paths(inp, out_dir, n_iter, all_iterations):
    stem = Path(inp).name
    for ext in (".tiff", ".tif"):
        if stem.lower().endswith(ext):
            stem = stem[: -len(ext)]
    ks = range(1, n_iter + 1) if all_iterations else [n_iter]
    return {k: Path(out_dir) / f"{stem}_iter{k}.tif" for k in ks}


def adaptive_paths(inp, out_dir):
    """``{'image': OUT_DIR/<name>_adaptive.tif, 'json': OUT_DIR/<name>.adaptive.json}``."""
    stem = output_paths(inp, out_dir, 1, False)[1].name[: -len("_iter1.tif")]
    return {"image": Path(out_dir) / f"{stem}_adaptive.tif", "json": Path(out_dir) / f"{stem}.adaptive.json"}


def _check_adaptive(args):
    if args.max_iter < 1:
        raise ValueError(f"--max-iter must be >= 1, got {args.max_iter}")
    if args.n_iter != 1 or args.save_all_iterations:
        raise ValueError("--n-iter and --save-all-iterations do not apply with --adaptive: it chooses the iterations "
                         "itself up to --max-iter (see the .adaptive.json); predict without --adaptive for fixed ones")
    if _blockwise.is_zarr_output(args.output_dir):
        raise ValueError("--adaptive writes TIFFs; for a big volume run DeepContrast.predict_adaptive on a sample "
                         "in Python and pass its report.chosen to predict_blockwise(..., chosen=...)")
    if args.depth < 0:
        raise ValueError(f"--depth must be >= 0 micrometres, got {args.depth}")


def _predict_adaptive(model, args, inp, img, axes, scale, kw):
    """Write the adaptive restoration of ``img`` and its choice as JSON; return the paths."""
    outs = adaptive_paths(inp, args.output_dir)
    if args.voxel_size is not None:
        vs = parse_floats(args.voxel_size, "--voxel-size")
    else:  # the file's own scale when it has one for every spatial axis, else the model's
        spatial = [a for a in axes if a in "ZYX"]
        known = (scale or {}).get("unit") == "um" and all(a in scale for a in spatial)
        vs = tuple(scale[a] for a in spatial) if known else None
    restored, report = model.predict_adaptive(img, axes, max_iter=args.max_iter, voxel_size=vs, surface=args.surface,
                                              depth=args.depth, **kw)
    write_tiff(outs["image"], restored, axes=axes, scale=scale)
    write_json(outs["json"], {"input": str(inp), "output": outs["image"].name, **report.to_dict()})
    return outs


def run(args):
    if args.n_iter < 1:
        raise ValueError(f"--n-iter must be >= 1, got {args.n_iter}")
    if args.adaptive:
        _check_adaptive(args)
    model_dir = Path(args.model)
    check_model_folder(model_dir)
    names = [Path(i).name for i in args.inputs]
    if len(set(names)) != len(names):
        raise ValueError("inputs have the same file name, so their outputs would collide; predict them separately")

    from ..models import DeepContrast

    model = DeepContrast(None, model_dir.name, basedir=str(model_dir.parent))
    if args.memory_mb is not None:
        if not args.memory_mb > 0:
            raise ValueError(f"--memory-mb must be > 0, got {args.memory_mb}")
        model.config.predict_memory_mb = args.memory_mb
    if _blockwise.is_zarr_output(args.output_dir):
        return _blockwise.run(args, model, parse_floats)
    if args.block_size or args.workers or args.scheduler or args.resume or not args.pyramid or \
            (args.voxel_size and not args.adaptive):
        raise ValueError("--block-size, --workers, --scheduler, --resume, --no-pyramid and --voxel-size apply to a "
                         "zarr output only (--voxel-size also to --adaptive): pass -o OUT.zarr")
    failed = []
    for inp in args.inputs:
        try:
            outs = (adaptive_paths(inp, args.output_dir) if args.adaptive else
                    output_paths(inp, args.output_dir, args.n_iter, args.save_all_iterations))
            for o in outs.values():
                check_output(o, args.overwrite, inputs=args.inputs)
            img, scale = read_tiff(inp, with_scale=True)
            axes = args.axes.upper() if args.axes else model.config.axes.replace("C", "")
            if not args.axes and len(axes) != img.ndim:
                raise ValueError(f"image has {img.ndim} dimensions {img.shape}; pass --axes (e.g. ZYX)")
            n_tiles = parse_n_tiles(args.n_tiles, img.ndim)
            kw = dict(n_tiles=n_tiles, physical=args.physical, background=args.background, precision=args.precision)
            if args.adaptive:
                _predict_adaptive(model, args, inp, img, axes, scale, kw)
                print(f"{inp} -> {', '.join(str(o) for o in outs.values())}")
                continue
            if args.save_all_iterations:
                iterates = model.predict_iterative(img, axes, args.n_iter, **kw)
            else:
                iterates = [model.predict(img, axes, n_iter=args.n_iter, **kw)]
            for o, y in zip(outs.values(), iterates):
                write_tiff(o, y, axes=axes, scale=scale)
            print(f"{inp} -> {', '.join(str(o) for o in outs.values())}")
        except (ValueError, OSError) as e:  # FileNotFoundError/FileExistsError are OSErrors
            if getattr(args, "verbose", False):
                traceback.print_exc()
            print(f"deepcontrast predict: failed: {inp}: {e}", file=sys.stderr)
            failed.append(inp)
    if failed:
        print(f"deepcontrast predict: {len(failed)} of {len(args.inputs)} inputs failed", file=sys.stderr)
        return 1
    return 0
