"""Helpers shared by the subcommands: argument parsing and safe file output."""
import os
import tempfile
from pathlib import Path

import numpy as np


def parse_floats(text, name):
    """Parse ``'2,0.5,0.5'`` into a tuple of floats; raise a ValueError naming ``name``."""
    try:
        values = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError(f"{name} must be comma-separated numbers like '2,0.5,0.5', got {text!r}") from None
    return values


def parse_range(text, name):
    """Parse ``'10:40'`` into ``(10.0, 40.0)`` or ``'30'`` into ``30.0``."""
    if ":" in str(text):
        lo, _, hi = str(text).partition(":")
        try:
            return (float(lo), float(hi))
        except ValueError:
            raise ValueError(f"{name} must be a number or a range LOW:HIGH like '10:40', got {text!r}") from None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number or a range LOW:HIGH like '10:40', got {text!r}") from None


def check_output(path, overwrite, inputs=()):
    """Refuse to write ``path`` over an input, or over an existing file unless ``overwrite``."""
    path = Path(path)
    for inp in inputs:
        if Path(inp).exists() and path.exists() and os.path.samefile(inp, path):
            raise ValueError(f"output {path} is one of the inputs; choose another output path")
        if Path(inp).resolve() == path.resolve():
            raise ValueError(f"output {path} is one of the inputs; choose another output path")
    if path.exists() and not overwrite:
        raise FileExistsError(f"output {path} exists; pass --overwrite to replace it")
    return path


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
