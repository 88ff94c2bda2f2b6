"""``deepcontrast demo``: the whole workflow in one command (see :func:`deepcontrast.demo.run_demo`)."""
from ._common import SURFACE_HELP, SURFACES, parse_floats


def add_parser(sub):
    p = sub.add_parser(
        "demo",
        help="run the whole workflow on the built-in sample (or your stack) and show the results",
        description="Generate training data with the forward model, train a DeepContrast model, predict "
        "iteratively, evaluate against the clean truth and CLAHE / Richardson-Lucy, export for Fiji, and "
        "print a summary. Runs on the built-in synthetic sample unless --input is given. Default run: "
        "at most ~10 minutes on a 2-core CPU; --quick: about 1-2 minutes.",
    )
    p.add_argument("--out", default="deepcontrast_demo", metavar="DIR",
                   help="output folder (default deepcontrast_demo); a non-empty folder not created by the demo is refused")
    p.add_argument("--quick", action="store_true", help="small sample, small network, few steps (weaker results)")
    p.add_argument("--input", metavar="STACK.tif", help="your own stack instead of the built-in sample (no ground truth)")
    p.add_argument("--axes", help="axes of --input, e.g. ZYX or YX (required with --input)")
    p.add_argument("--voxel-size", help="um per pixel of --input for each spatial axis, e.g. 2,0.5,0.5")
    p.add_argument("--surface", choices=SURFACES, default="first", help=SURFACE_HELP)
    p.add_argument("--depth", type=float, default=0.0, help="depth (um) of the surface-most slice of --input (default 0)")
    p.add_argument("--microscope", choices=("auto", "point-scanning", "widefield"), default="auto",
                   help="how --input was acquired, for calibrating the forward model (widefield also for spinning "
                   "disk and light sheet); default: decided from the data, a weak test")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="write into a non-empty DIR not created by the demo")
    p.set_defaults(func=run)


def run(args):
    from ..demo import run_demo

    if args.input is None and (args.axes or args.voxel_size or args.microscope != "auto"):
        raise ValueError("--axes, --voxel-size and --microscope describe --input; give --input STACK.tif too "
                         "(or leave them out)")
    vs = parse_floats(args.voxel_size, "--voxel-size") if args.voxel_size else None
    result = run_demo(args.out, quick=args.quick, input=args.input, axes=args.axes, voxel_size=vs,
                      surface=args.surface, depth=args.depth, microscope=args.microscope, overwrite=args.overwrite,
                      rng=args.seed)
    print()
    print(result["table"])
    print()
    print(where_is_everything(result["paths"]))


def where_is_everything(paths):
    """The closing 'where is everything' lines, from run_demo's ``paths``."""
    from pathlib import Path

    out = Path(paths["out_dir"])

    def rel(key):
        return str(Path(paths[key]).relative_to(out)) if key in paths else None

    groups = [
        ("images (TIFF)", [rel(k) for k in paths if k.endswith(".tif")] + [rel("ground_truth")]),
        ("figures", [rel(k) for k in paths if k.endswith(".png")]),
        ("metrics", [rel("metrics.json"), rel("demo_summary.json")]),
        ("training data", [rel("training_data"), rel("training_data_settings")]),
        ("model", [rel("model")]),
        ("Fiji export", [rel("fiji_export")]),
    ]
    lines = [f"everything is in {out}/:"]
    lines += [f"  {name:15s} {', '.join(f for f in files if f)}" for name, files in groups if any(files)]
    if "fiji_export" in paths:
        lines.append(f"In Fiji: Plugins > CSBDeep > Run your network, 'Import model (.zip) from file': {paths['fiji_export']}")
    return "\n".join(lines)
