"""A CSBDeep/DeepContrast model folder: ``basedir/name/{config.json, deepcontrast.json, *.h5}``.

``config.json`` holds the network configuration and nothing else (the keys of CSBDeep's
``Config``, so ``csbdeep.models.CARE`` loads the folder); ``deepcontrast.json`` holds
everything of deepcontrast's own: its settings (data-generation settings, prediction memory,
per-plane normalization, precision), the training history and the list of trainings. Folders
written before this split keep those settings in ``config.json``; :func:`read_model_files`
reads both layouts the same way and never writes.
"""
from pathlib import Path

from .files import read_json, write_json

__all__ = ["WEIGHTS_GLOB", "CONFIG_FILE", "SIDE_FILE", "check_model_folder", "weight_files",
           "read_model_files", "write_model_files"]

#: weights files CSBDeep writes and loads (``weights_best.h5``, ``weights_last.h5``, ...)
WEIGHTS_GLOB = "*.h5"
#: the network configuration, as CSBDeep writes and reads it
CONFIG_FILE = "config.json"
#: deepcontrast's side file: settings, training history, trainings (JSON, no pickle)
SIDE_FILE = "deepcontrast.json"


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
    cfg = folder / CONFIG_FILE
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


def read_side_file(folder):
    """The content of ``folder/deepcontrast.json`` (a dict), ``{}`` when there is none.

    Raises
    ------
    ValueError
        A side file that is not valid JSON or not a JSON object (never silently replaced).
    """
    p = Path(folder) / SIDE_FILE
    if not p.exists():
        return {}
    side = read_json(p, what="DeepContrast side file (settings, training history)")
    if not isinstance(side, dict):
        raise ValueError(f"{p} must hold a JSON object; restore it from a backup or delete it")
    return side


def read_model_files(folder, settings_keys):
    """Read a model folder's network configuration and deepcontrast's side file, in either layout.

    Nothing is written: a folder in the old layout (``settings_keys`` in ``config.json``) is
    migrated in memory; :func:`write_model_files` writes the current layout.

    Parameters
    ----------
    folder : str or pathlib.Path
        The model folder.
    settings_keys : iterable of str
        The keys of deepcontrast's settings (they belong in the side file).

    Returns
    -------
    network : dict
        ``config.json`` without ``settings_keys`` (what CSBDeep's ``Config`` takes).
    settings : dict
        The settings found (keys missing in both files are absent). Where ``config.json`` of
        the old layout holds a key, its value is used: that is the value the model was loaded
        with before the split (the side file's ``degradation_settings`` was a copy).
    side : dict
        The rest of the side file (``history``, ``trainings``, ...).
    old_layout : bool
        Whether ``config.json`` held any of ``settings_keys``.

    Raises
    ------
    FileNotFoundError, ValueError
        As :func:`check_model_folder` and :func:`read_side_file`.
    """
    network = check_model_folder(folder, weights=False)
    side = read_side_file(folder)
    settings = {k: side.pop(k) for k in settings_keys if k in side}
    old = {k: network.pop(k) for k in settings_keys if k in network}
    settings.update(old)
    return network, settings, side, bool(old)


def write_model_files(folder, network=None, side=None):
    """Write ``config.json`` (the network) and/or ``deepcontrast.json`` (the rest) atomically.

    Parameters
    ----------
    folder : str or pathlib.Path
        The model folder (created if needed).
    network : dict or None
        The network configuration, CSBDeep's keys only; ``None`` leaves ``config.json`` alone.
    side : dict or None
        Settings, history and trainings; ``None`` leaves ``deepcontrast.json`` alone. It is
        written before ``config.json``, so an interruption between the two leaves a folder that
        still loads with its old settings.
    """
    folder = Path(folder)
    if side is not None:
        write_json(folder / SIDE_FILE, side)
    if network is not None:
        write_json(folder / CONFIG_FILE, network)
