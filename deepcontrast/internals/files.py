"""Atomic file output and JSON files.

Outputs are written through a temporary file in the target folder and renamed into place, so
an interrupted run never leaves a half-written file under the final name. The file gets the
permissions of a normal file write (``0o666`` minus the umask), not the private ``0o600`` of
a temporary file, so colleagues on a shared server can read results.
"""
import json
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_write", "write_json", "read_json", "to_jsonable", "zip_dir"]


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write):
    """Call ``write(tmp_path)`` and move the result to ``path`` only when it succeeded.

    Parameters
    ----------
    path : str or pathlib.Path
        Final file name; its folder is created if needed.
    write : callable
        Writes the content to the temporary path it is given.

    Returns
    -------
    pathlib.Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        if os.path.isfile(tmp):
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.remove(tmp)
        raise
    return path


def write_json(path, obj, *, indent=2, default=None):
    """Write ``obj`` (made JSON-serializable with :func:`to_jsonable`) atomically.

    ``default`` is passed to :func:`json.dumps` for objects that are still not serializable
    (e.g. ``str``).
    """
    text = json.dumps(to_jsonable(obj), indent=indent, default=default)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_json(path, *, what="file"):
    """Read a JSON file; a file that is not valid JSON raises a ValueError naming it.

    Parameters
    ----------
    path : str or pathlib.Path
    what : str
        What the file is, for the message (e.g. ``'model config'``).

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not valid JSON (e.g. truncated).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} {path} is not a text (JSON) file ({e}); restore or delete it") from None
    try:
        return json.loads(text)
    except ValueError as e:
        raise ValueError(f"{what} {path} is not valid JSON ({e}); the file is corrupt or truncated: "
                         "restore it from a backup or delete it") from None


def to_jsonable(x):
    """Make ``x`` JSON-serializable: numpy scalars/arrays and tuples to Python, NaN/Inf to None."""
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return to_jsonable(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None  # JSON has no NaN/Inf (e.g. PSNR of identical images)
    if isinstance(x, Path):
        return str(x)
    return x


def zip_dir(src, zip_path):
    """Zip the contents of ``src`` (like ``shutil.make_archive``, with directory entries)."""
    src = Path(src)
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as z:
        for root, dirs, files in os.walk(src):
            dirs.sort()
            rel = Path(root).relative_to(src)
            if rel != Path("."):
                z.write(root, rel.as_posix() + "/")
            for f in sorted(files):
                z.write(Path(root) / f, (rel / f).as_posix())
