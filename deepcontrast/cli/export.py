"""``deepcontrast export``: write a trained model for Fiji (CSBDeep plugin) or bioimage.io."""
from pathlib import Path

from ..internals.model_folder import check_model_folder
from ._common import check_output

FORMATS = ("fiji", "bioimageio")


def add_parser(sub):
    p = sub.add_parser(
        "export",
        help="export a trained model for Fiji (CSBDeep plugin) or bioimage.io",
        description="Export the model in MODEL_DIR (basedir/name, as written by training) as a CSBDeep "
        "SavedModel zip that Fiji's CSBDeep plugin (TensorFlow 1.15) loads, or as a bioimage.io package "
        "(needs: pip install \"deepcontrast[bioimageio]\").",
    )
    p.add_argument("model", metavar="MODEL_DIR", help="model folder, e.g. models/my_model")
    p.add_argument("--format", choices=FORMATS, default="fiji", help="export format (default: fiji)")
    p.add_argument("-o", "--output", metavar="OUT.zip",
                   help="output zip (default: MODEL_DIR/TF_SavedModel.zip for fiji, "
                   "MODEL_DIR/<name>.bioimageio.zip for bioimageio)")
    p.add_argument("--overwrite", action="store_true", help="replace OUT.zip if it exists")
    g = p.add_argument_group("bioimage.io metadata")
    g.add_argument("--name", help="model name shown on bioimage.io")
    g.add_argument("--description", help="one-sentence description")
    g.add_argument("--authors", help="comma-separated author names, e.g. 'Ada Lovelace,Alan Turing'")
    g.add_argument("--license", default="BSD-3-Clause", help="SPDX license id (default BSD-3-Clause)")
    p.set_defaults(func=run)


def run(args):
    folder = Path(args.model)
    check_model_folder(folder)
    if args.output is None:
        out = folder / ("TF_SavedModel.zip" if args.format == "fiji" else f"{folder.resolve().name}.bioimageio.zip")
    else:
        out = Path(args.output)
    if out.suffix != ".zip":
        raise ValueError(f"output {out} must end with .zip")
    check_output(out, args.overwrite, inputs=[folder / "config.json"])
    if args.format == "bioimageio":
        from ..export.bioimageio import require_bioimageio

        try:
            require_bioimageio()  # fail before loading TensorFlow and the model
        except ImportError as e:
            raise ValueError(str(e)) from None

    from ..models import DeepContrast

    model = DeepContrast(None, folder.resolve().name, basedir=str(folder.resolve().parent))
    if args.format == "fiji":
        path = model.export_TF(out)
    else:
        authors = [a.strip() for a in args.authors.split(",") if a.strip()] if args.authors else None
        path = model.export_bioimageio(out, name=args.name, description=args.description, authors=authors,
                                       license=args.license)
    print(f"wrote {path} ({args.format})")
