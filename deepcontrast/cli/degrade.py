"""``deepcontrast degrade``: apply the forward model to one image file."""
from ..internals.tiff import read_tiff, write_tiff
from ._common import SURFACE_HELP, SURFACES, check_output, parse_floats


def add_parser(sub):
    p = sub.add_parser(
        "degrade",
        help="make an image look deeper in tissue (the forward model)",
        description="Apply the deep-tissue forward model to IN.tif and write a float32 TIFF.",
    )
    p.add_argument("input", metavar="IN.tif")
    p.add_argument("output", metavar="OUT.tif")
    p.add_argument("--axes", required=True, help="axes of the input, e.g. YX or ZYX")
    p.add_argument("--extra-depth", type=float, required=True, help="additional depth in micrometres")
    p.add_argument("--depth", type=float, default=0.0, help="depth (um) of the surface-most slice (default 0)")
    p.add_argument("--voxel-size", help="um per pixel for each spatial axis, e.g. 2,0.5,0.5 (default 1)")
    p.add_argument("--surface", choices=SURFACES, default="first", help=SURFACE_HELP)
    p.add_argument("--photons", type=float, default=None, help="photons per unit intensity for shot noise (default: none)")
    p.add_argument("--read-noise", type=float, default=0.0, help="Gaussian read noise, intensity units (default 0)")
    p.add_argument("--seed", type=int, default=None, help="seed for the noise")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.tif if it exists")
    p.set_defaults(func=run)


def run(args):
    from ..degradation import DeepTissueDegradation

    out = check_output(args.output, args.overwrite, inputs=[args.input])
    img, scale = read_tiff(args.input, with_scale=True)
    vs = parse_floats(args.voxel_size, "--voxel-size") if args.voxel_size else None
    from ..depth import resolve_depth

    deg = DeepTissueDegradation(photons=args.photons, read_noise=args.read_noise)
    depth, surface = resolve_depth(img, args.axes, voxel_size=vs, surface=args.surface, depth=args.depth)
    y = deg(img, args.axes, args.extra_depth, depth=depth, voxel_size=vs, surface=surface, rng=args.seed)
    axes = args.axes.upper()
    if vs is not None:  # the forward model used these sizes (um): so does the output's calibration
        scale = dict(zip([a for a in axes if a in "ZYX"], vs), unit="um")
    write_tiff(out, y, axes=axes, scale=scale)
    print(f"wrote {out} ({y.shape}, float32)")
