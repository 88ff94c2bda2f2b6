"""Checks of a CSBDeep/DeepContrast model folder (``basedir/name/{config.json, *.h5}``)."""
from pathlib import Path

from .files import read_json

__all__ = ["WEIGHTS_GLOB", "check_model_folder", "weight_files"]

#: weights files CSBDeep writes and loads (``weights_best.h5``, ``weights_last.h5``, ...)
WEIGHTS_GLOB = "*.h5"


def weight_files(folder):
    """The weights files in ``folder`` (CSBDeep's ``*.h5``), newest first."""
    return sorted(Path(folder).glob(WEIGHTS_GLOB), key=lambda f: f.stat().st_mtime, reverse=True)


def check_model_folder(folder, *, weights=True):
    """Check that ``folder`` holds a loadable model; return its config (a dict).

    Parameters
    ----------
    folder : str or pathlib.Path
    weights : bool
        Also require a weights file.

    Returns
    -------
    dict
        The content of ``config.json``.

    Raises
    ------
    FileNotFoundError
        No such folder, no ``config.json`` or (with ``weights``) no ``*.h5`` weights.
    ValueError
        A ``config.json`` that is not a JSON object (garbage, truncated).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist; pass the folder that holds config.json "
                                "(e.g. models/my_model)")
    cfg = folder / "config.json"
    if not cfg.is_file():
        raise FileNotFoundError(f"model folder {folder} has no config.json; is it a CSBDeep/DeepContrast model folder?")
    config = read_json(cfg, what="model config")
    if not isinstance(config, dict):
        raise ValueError(f"model config {cfg} must hold a JSON object, got {type(config).__name__}; "
                         "restore it or train the model anew")
    if weights and not weight_files(folder):
        raise FileNotFoundError(f"model folder {folder} has no weights (weights_best.h5 / weights_last.h5); "
                                "train the model first")
    return config
