"""Where the data-generation settings live next to a training-data file."""
import json
from pathlib import Path

from ..internals.files import atomic_write

__all__ = ["settings_path", "load_settings", "save_settings"]


def settings_path(npz_path):
    """Path of the settings side file of a training-data file.

    ``'data/my_training_data.npz'`` -> ``'data/my_training_data.settings.json'``. Like
    :func:`csbdeep.io.save_training_data`, a missing or different suffix is replaced by ``.npz``
    first.

    Parameters
    ----------
    npz_path : str or pathlib.Path
        The training data file (as given to ``save_file``).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> str(settings_path('data/my_training_data.npz'))
    'data/my_training_data.settings.json'
    """
    p = Path(npz_path).with_suffix(".npz")
    return p.with_name(p.stem + ".settings.json")


def load_settings(npz_path):
    """The data-generation settings saved next to ``npz_path``, or None if there are none.

    Parameters
    ----------
    npz_path : str or pathlib.Path
        Training data written by :func:`deepcontrast.data.create_patches`.

    Returns
    -------
    dict or None
        The ``settings`` of the :class:`DegradedRawData` the patches came from (degradation
        parameters, extra_depth range, voxel size, surface, depth, axes, calibration), or None
        if no side file exists (e.g. data made with plain CSBDeep).

    Raises
    ------
    ValueError
        If the side file exists but is not valid JSON.

    Examples
    --------
    >>> load_settings('does/not/exist.npz') is None
    True
    """
    path = settings_path(npz_path)
    if not path.exists():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"settings file {path} is not valid JSON ({e}); delete or fix it") from None


def save_settings(npz_path, settings):
    """Write ``settings`` as JSON to :func:`settings_path` of ``npz_path`` (atomically).

    :func:`deepcontrast.data.create_patches` does this for you; call it yourself when you
    post-process the patches (e.g. squeeze Z for 2D-on-slices training) and save them with
    :func:`csbdeep.io.save_training_data`.

    Parameters
    ----------
    npz_path : str or pathlib.Path
        The training data file the settings describe.
    settings : dict
        JSON-serializable, usually ``DegradedRawData.settings``.

    Returns
    -------
    pathlib.Path
        The settings file written.

    Examples
    --------
    >>> save_settings('data/my_training_data.npz', raw_data.settings)  # doctest: +SKIP
    """
    text = json.dumps(settings, indent=2, sort_keys=True)

    def _write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text + "\n")

    return atomic_write(settings_path(npz_path), _write)
