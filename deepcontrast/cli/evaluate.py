"""``deepcontrast evaluate``: iterations vs raw vs CLAHE / Richardson-Lucy, as a report folder."""
from pathlib import Path

from ..internals.model_folder import check_model_folder
from ..internals.tiff import read_tiff
from ._common import SURFACE_HELP, SURFACES, parse_floats


def add_parser(sub):
    p = sub.add_parser(
        "evaluate",
        help="measure contrast gained and detail lost per iteration (report folder + table)",
        description="Apply a trained model iteratively to IMAGE.tif, compare with CLAHE and Richardson-Lucy, check "
        "every iteration against the raw data through the model's forward model (restored depth and chi2 per third "
        "of the stack), and write OUT/metrics.json, contrast_profile.png, iterations.png, tradeoff.png and TIFFs of "
        "every image.",
    )
    p.add_argument("model", metavar="MODEL_DIR", help="model folder, e.g. models/my_model")
    p.add_argument("input", metavar="IMAGE.tif")
    p.add_argument("--axes", required=True, help="axes of the image, e.g. YX or ZYX")
    p.add_argument("-o", "--output", required=True, metavar="OUT_DIR", help="report folder (created if needed)")
    p.add_argument("--ground-truth", metavar="GT.tif", help="clean image of the same shape (adds PSNR/SSIM/NRMSE)")
    p.add_argument("--n-iter", type=int, default=4, help="number of iterations to evaluate (default 4)")
    p.add_argument("--voxel-size", help="um per pixel for each spatial axis, e.g. 2,0.5,0.5 (default: the model's, else 1)")
    p.add_argument("--surface", choices=SURFACES, default="first",
                   help=SURFACE_HELP + "; the check of each iteration then compares each plane on its tissue")
    p.add_argument("--depth", type=float, default=0.0,
                   help="depth (um) of the image (2D) or of its surface-end slice (default 0; not with --surface auto)")
    p.add_argument("--n-tiles", help="tiles per axis of the image for prediction, e.g. 1,4,4 (default: automatic)")
    p.add_argument("--no-baselines", action="store_true", help="skip CLAHE and Richardson-Lucy")
    p.add_argument("--no-consistency", action="store_true",
                   help="skip the check of each iteration against the raw data (restored depth and chi2 columns; it "
                   "searches each plane's restored depth on a central 128x128 pixel crop and fits chi2 on planes of "
                   "at most 512x512 pixels: about a third of a prediction pass per iteration)")
    p.add_argument("--overwrite", action="store_true", help="replace existing report files in OUT_DIR")
    p.set_defaults(func=run)


def run(args):
    from ..depth import AUTO_SURFACES, resolve_depth
    from ..evaluate import check_targets, evaluate_model, format_table

    folder = Path(args.model)
    check_model_folder(folder)
    out = Path(args.output)
    for inp in [args.input, args.ground_truth, folder]:
        if inp is not None and Path(inp).resolve() == out.resolve():
            raise ValueError(f"output folder {out} is one of the inputs; choose another folder")
    if args.n_iter < 1:
        raise ValueError(f"--n-iter must be >= 1, got {args.n_iter}")
    check_targets(out, args.n_iter, () if args.no_baselines else ("clahe", "richardson_lucy"), args.overwrite)
    img = read_tiff(args.input)
    gt = read_tiff(args.ground_truth) if args.ground_truth else None
    vs = parse_floats(args.voxel_size, "--voxel-size") if args.voxel_size else None
    n_tiles = tuple(int(v) for v in parse_floats(args.n_tiles, "--n-tiles")) if args.n_tiles else None

    from ..models import DeepContrast

    model = DeepContrast(None, name=folder.name, basedir=str(folder.resolve().parent))
    if args.surface in AUTO_SURFACES and args.depth:
        raise ValueError(f"--depth is the depth of a flat surface's first slice; with --surface {args.surface} each "
                         "voxel's depth below the tissue's own surface is found in the stack: leave --depth out")
    map_vs = vs or tuple((model.degradation_settings or {}).get("voxel_size") or ()) or None
    depth, surface = resolve_depth(img, args.axes, voxel_size=map_vs, surface=args.surface, depth=args.depth)
    report = evaluate_model(model, img, args.axes, n_iter=args.n_iter, ground_truth=gt, voxel_size=vs,
                            surface=surface, depth=depth, n_tiles=n_tiles, baselines=not args.no_baselines,
                            out_dir=out, overwrite=args.overwrite, consistency=not args.no_consistency)
    print(format_table(report))
    print(f"wrote report to {out}/ (metrics.json, contrast_profile.png, iterations.png, tradeoff.png, TIFFs)")
