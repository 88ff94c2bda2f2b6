"""``deepcontrast train``: train a DeepContrast model on a training-data npz."""
import json
from pathlib import Path

from ..internals.model_folder import weight_files


def add_parser(sub):
    p = sub.add_parser(
        "train",
        help="train a model on training data (npz from 'deepcontrast datagen')",
        description="Train a DeepContrast network on DATA.npz (degraded raw -> raw pairs). The data-generation "
        "settings next to it (DATA.settings.json) are saved with the model. Ctrl-C stops the training and keeps "
        "the weights reached so far (weights_last.h5).",
    )
    p.add_argument("data", metavar="DATA.npz", help="training data written by 'deepcontrast datagen'")
    p.add_argument("--name", required=True, help="model name (folder created in --basedir)")
    p.add_argument("--basedir", default="models", help="folder holding the model folders (default: models)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: config value, 100)")
    p.add_argument("--steps", type=int, default=None, help="steps per epoch (default: config value, 400)")
    p.add_argument("--validation-split", type=float, default=0.1,
                   help="fraction of the patches used for validation (default 0.1)")
    p.add_argument("--config-json", metavar="FILE",
                   help="JSON file with Config keys, e.g. {\"unet_n_depth\": 3, \"train_batch_size\": 8}")
    p.add_argument("--continue", dest="cont", action="store_true",
                   help="continue training the existing model --name (its config is kept)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing model folder's config and weights")
    p.set_defaults(func=run)


def _read_config_json(path):
    if path is None:
        return {}
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--config-json file {path} does not exist")
    try:
        keys = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"--config-json file {path} is not valid JSON ({e})") from None
    if not isinstance(keys, dict):
        raise ValueError(f"--config-json file {path} must hold a JSON object of Config keys, e.g. {{\"unet_n_depth\": 2}}")
    return keys


def run(args):
    data = Path(args.data)
    if not data.exists():
        raise FileNotFoundError(f"training data {data} does not exist; create it with 'deepcontrast datagen'")
    if not 0 < args.validation_split < 1:
        raise ValueError(f"--validation-split must be between 0 and 1 (exclusive), got {args.validation_split}")
    for flag, v in (("--epochs", args.epochs), ("--steps", args.steps)):
        if v is not None and v < 1:
            raise ValueError(f"{flag} must be >= 1, got {v}")
    keys = _read_config_json(args.config_json)
    folder = Path(args.basedir) / args.name
    exists = (folder / "config.json").exists()
    if exists and not (args.cont or args.overwrite):
        raise FileExistsError(f"model {folder} exists; pass --continue to train it further or --overwrite to start anew")
    if args.cont and not exists:
        raise FileNotFoundError(f"--continue: model {folder} does not exist")

    from csbdeep.io import load_training_data

    from ..models import Config, DeepContrast

    try:
        (X, Y), (X_val, Y_val), axes = load_training_data(str(data), validation_split=args.validation_split)
    except Exception as e:
        raise ValueError(f"cannot read training data {data} ({type(e).__name__}: {e})") from None
    if len(X_val) == 0:
        raise ValueError(f"{data} holds too few patches ({len(X) + len(X_val)}) for validation; "
                         "increase --validation-split or create more patches")
    if args.cont:
        if keys:
            raise ValueError("--config-json cannot be combined with --continue (the model keeps its config)")
        model = DeepContrast(None, args.name, basedir=args.basedir)
    else:
        if args.overwrite and folder.exists():
            for f in weight_files(folder):
                f.unlink()
        try:
            config = Config.from_training_data(data, **keys)
        except AttributeError as e:
            raise ValueError(f"--config-json: {e}; see csbdeep.models.Config for the valid keys") from None
        ok, invalid = config.is_valid(True)
        if not ok:
            raise ValueError(f"invalid configuration values: {', '.join(invalid)}")
        model = DeepContrast(config, args.name, basedir=args.basedir)
    history = model.train(X, Y, validation_data=(X_val, Y_val), epochs=args.epochs, steps_per_epoch=args.steps)
    val = history.history.get("val_loss", [float("nan")])
    print(f"trained {model.logdir} ({len(history.epoch)} epochs, best val_loss {min(val):.4g}, last {val[-1]:.4g})")
