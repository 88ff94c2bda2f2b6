"""``deepcontrast datagen``: training pairs (degraded raw -> raw) from folders of raw TIFFs.

RAW_DIR arguments are paths as given (relative to the current folder, or absolute); all TIFFs
matching ``--pattern`` in each are used (``--pattern '*.zarr'`` for zarr/OME-Zarr volumes). RAW_DIR
arguments may instead be volumes themselves (``.zarr``/``.ome.zarr`` folders or TIFF files), read
lazily; ``--subvolume-size`` degrades random sub-volumes of them at their true depth. ``--sample`` uses the built-in synthetic sample
instead. The npz is written atomically, with its settings side file
(``<output without .npz>.settings.json``) next to it.
"""
import logging

from ._common import SURFACE_HELP, SURFACES, check_output, parse_floats, parse_range

log = logging.getLogger(__name__)


def add_parser(sub):
    p = sub.add_parser(
        "datagen",
        help="make training pairs from raw images (the forward model makes the input)",
        description="Degrade raw images further with the deep-tissue forward model and extract CSBDeep "
        "training patches (input = degraded raw, target = raw) into an npz file, plus a "
        "<name>.settings.json side file recording how they were made.",
    )
    p.add_argument("raw_dirs", nargs="*", metavar="RAW_DIR",
                   help="folders of raw TIFF images, or volumes (VOL.zarr, VOL.ome.zarr, VOL.tif) read lazily")
    p.add_argument("-o", "--output", required=True, help="training data file to write, e.g. data/my_training_data.npz")
    p.add_argument("--axes", default=None, help="axes of the images, e.g. YX or ZYX (required with RAW_DIR; ZYX for --sample)")
    p.add_argument("--patch-size", required=True, help="patch size per axis, e.g. 16,64,64")
    p.add_argument("--n-patches", type=int, required=True, help="patches per degraded image")
    p.add_argument("--extra-depth", default="10:40", help="extra depth in um, a number or a range LOW:HIGH (default 10:40)")
    p.add_argument("--n-degradations", type=int, default=1, help="degraded copies per raw image (default 1)")
    p.add_argument("--voxel-size", help="um per pixel for each spatial axis, e.g. 2,0.5,0.5 (default 1; 2,0.5,0.5 for --sample)")
    p.add_argument("--surface", choices=SURFACES, default="first", help=SURFACE_HELP)
    p.add_argument("--depth", type=float, default=0.0, help="depth (um) of the surface-most slice, or of 2D planes (default 0)")
    p.add_argument("--pattern", default="*.tif*", help="glob pattern of the images in each RAW_DIR (default '*.tif*')")
    noise = p.add_mutually_exclusive_group()
    noise.add_argument("--photons", type=float, default=None, help="photons per unit intensity for shot noise")
    noise.add_argument("--calibrate", action="store_true", help="estimate the forward model (noise level) from the raw images")
    p.add_argument("--microscope", choices=("auto", "point-scanning", "widefield"), default="auto",
                   help="with --calibrate: how the images were acquired (widefield also for spinning disk and "
                   "light sheet); default: decided from the data, a weak test")
    p.add_argument("--subvolume-size", metavar="N,N,N", help="degrade random sub-volumes of this size per image "
                   "(read lazily; for volumes too big for memory), e.g. 32,256,256")
    p.add_argument("--n-subvolumes", type=int, default=1, help="sub-volumes per image with --subvolume-size (default 1)")
    p.add_argument("--normalize-stacks", action="store_true",
                   help="normalize each stack as a whole (CSBDeep's way) instead of every plane on its own "
                        "(the default for stacks, which the trained model then also does when it predicts)")
    p.add_argument("--seed", type=int, default=None, help="seed for extra-depth draws and noise")
    p.add_argument("--sample", action="store_true", help="use the built-in synthetic sample instead of RAW_DIR")
    p.add_argument("--overwrite", action="store_true", help="replace the output (and its settings file) if it exists")
    p.set_defaults(func=run)


def run(args):
    from ..calibration import training_blur_notice
    from ..data import DegradedRawData, create_patches, settings_path, synthetic_tissue
    from ..degradation import DeepTissueDegradation

    if args.sample and args.raw_dirs:
        raise ValueError("give either RAW_DIR folders or --sample, not both")
    if not args.sample and not args.raw_dirs:
        raise ValueError("give at least one RAW_DIR folder of raw TIFFs (or --sample for the built-in sample)")
    out = check_output(args.output, args.overwrite)
    if not str(out).endswith(".npz"):
        raise ValueError(f"output {out} must end with .npz (CSBDeep training data)")
    check_output(settings_path(out), args.overwrite)
    patch_size = tuple(int(v) for v in parse_floats(args.patch_size, "--patch-size"))
    extra_depth = parse_range(args.extra_depth, "--extra-depth")
    voxel_size = parse_floats(args.voxel_size, "--voxel-size") if args.voxel_size else None
    if args.microscope != "auto" and not args.calibrate:
        raise ValueError("--microscope is used to calibrate the forward model; add --calibrate")
    if args.calibrate:
        degradation = "auto"
    else:
        degradation = DeepTissueDegradation(photons=args.photons)
        if args.photons is None:
            log.warning("no noise in the forward model: pass --photons or --calibrate so the network learns "
                        "to separate noise from structure")
    kw = dict(n_degradations=args.n_degradations, voxel_size=voxel_size, surface=args.surface, depth=args.depth,
              rng=args.seed, microscope=args.microscope, normalize_planes=not args.normalize_stacks)
    if args.subvolume_size:
        kw.update(subvolume_size=tuple(int(v) for v in parse_floats(args.subvolume_size, "--subvolume-size")),
                  n_subvolumes=args.n_subvolumes)
    if args.sample:
        axes = (args.axes or "ZYX").upper()
        if axes != "ZYX":
            raise ValueError(f"--sample is a ZYX stack; drop --axes or pass --axes ZYX (got {args.axes})")
        kw["voxel_size"] = voxel_size or (2.0, 0.5, 0.5)
        observed, _ = synthetic_tissue(voxel_size=kw["voxel_size"])
        raw_data = DegradedRawData.from_arrays([observed], axes, degradation, extra_depth, **kw)
    else:
        if not args.axes:
            raise ValueError("--axes is required with RAW_DIR, e.g. --axes ZYX for stacks or --axes YX for planes")
        volumes = [d for d in args.raw_dirs if _is_volume(d)]
        if volumes and len(volumes) != len(args.raw_dirs):
            raise ValueError("give either folders of images or volumes (.zarr, .tif), not both")
        if volumes:
            raw_data = DegradedRawData.from_arrays(volumes, args.axes, degradation, extra_depth, **kw)
        else:
            raw_data = DegradedRawData.from_folder(".", args.raw_dirs, args.axes, degradation, extra_depth,
                                                   pattern=args.pattern, **kw)
    notice = training_blur_notice(raw_data)
    if notice:
        print(f"note: {notice}")
    X, Y, axes = create_patches(raw_data, patch_size, args.n_patches, save_file=out, overwrite=args.overwrite,
                                rng=args.seed, verbose=False)
    print(f"wrote {out}: X and Y of shape {X.shape} (axes {axes}) from {len(raw_data.names)} image(s) "
          f"x {raw_data.settings['n_degradations']} degradation(s); settings in {settings_path(out)}")


def _is_volume(path):
    return str(path).rstrip("/").lower().endswith((".zarr", ".tif", ".tiff"))
