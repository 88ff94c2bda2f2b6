"""File output and JSON helpers shared by the library and the command line.

Outputs are written through a temporary file in the target folder and renamed into place, so
an interrupted run never leaves a half-written file under the final name.
"""
import math
import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["atomic_write", "write_tiff", "read_tiff", "to_jsonable"]


def atomic_write(path, write):
    """Call ``write(tmp_path)`` and move the result to ``path`` only when it succeeded."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def write_tiff(path, img, *, axes=None):
    """Write ``img`` as a (ImageJ-compatible where possible) TIFF, atomically."""
    import tifffile

    img = np.asarray(img)

    def _write(tmp):
        kw = {}
        if axes is not None and set(axes) <= set("TZCYXS") and img.dtype != np.float64:
            kw = dict(imagej=True, metadata={"axes": axes})
        try:
            tifffile.imwrite(tmp, img, **kw)
        except (ValueError, TypeError):
            tifffile.imwrite(tmp, img)

    return atomic_write(path, _write)


def read_tiff(path):
    """Read a TIFF, turning tifffile's low-level errors into one that names the file."""
    import tifffile

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    try:
        return tifffile.imread(path)
    except Exception as e:
        raise ValueError(f"cannot read {path} as a TIFF ({type(e).__name__}: {e})") from None


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
