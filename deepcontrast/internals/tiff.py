"""TIFF reading and writing that keep axes, voxel size and unit; errors name the file.

A *scale* is a dict ``{'Z': 2.0, 'Y': 0.5, 'X': 0.5, 'unit': 'um'}`` (any subset of the keys):
the pixel size per spatial axis and its unit. It is read from the ImageJ metadata (``spacing``,
``unit``) and the TIFF resolution tags, and written the same way, so Fiji measures outputs in
the units of their inputs.
"""
import contextlib
import logging
from pathlib import Path

import numpy as np

from .files import atomic_write

__all__ = ["read_tiff", "write_tiff", "tiff_shape"]

logger = logging.getLogger(__name__)

_IMAGEJ_ORDER = "TZCYXS"
_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)
_MICRON = {"um", "micron", "microns", "µm", "\u00b5m", "\\u00B5m", "micrometer"}
_PER_UNIT_UM = {2: 25400.0, 3: 10000.0}  # TIFF ResolutionUnit: 2 inch, 3 centimetre, in um


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.ERROR)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _tiff_errors(path):
    """Turn tifffile's exceptions and logged errors (corrupt/truncated pages) into a ValueError."""
    handler = _Collect()
    tlog = logging.getLogger("tifffile")
    tlog.addHandler(handler)
    try:
        yield
    except Exception as e:
        raise ValueError(f"cannot read {path} as a TIFF ({type(e).__name__}: {e}); remove or replace it") from None
    finally:
        tlog.removeHandler(handler)
    if handler.messages:
        raise ValueError(f"cannot read {path}: the file is corrupt or truncated ({handler.messages[0]}); "
                         "re-save or replace it")


def tiff_shape(path, axes=None):
    """Shape of the first image series of a TIFF, from its header.

    Parameters
    ----------
    path : str or pathlib.Path
    axes : str or None
        When given, the shape must have one dimension per axis.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing file; a file that is not a readable TIFF or whose dimensions do not match
        ``axes`` (the message names it).
    """
    import tifffile

    path = _existing(path)
    with _tiff_errors(path), tifffile.TiffFile(path) as tif:
        shape = tuple(tif.series[0].shape)
    if axes is not None and len(shape) != len(axes):
        raise ValueError(
            f"image {path} has {len(shape)} dimensions {shape}, but axes {axes!r} have {len(axes)}; "
            "give the axes of the images (e.g. 'YX' for 2D, 'ZYX' for stacks) or remove this file"
        )
    return shape


def read_tiff(path, *, with_scale=False):
    """Read the first image series of a TIFF.

    Parameters
    ----------
    path : str or pathlib.Path
    with_scale : bool
        Also return the scale (voxel size per axis and unit) found in the file.

    Returns
    -------
    numpy.ndarray, or (numpy.ndarray, dict)

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        It is not a TIFF, or it is corrupt or truncated (tifffile could read only part of it).
    """
    import tifffile

    path = _existing(path)
    with _tiff_errors(path), tifffile.TiffFile(path) as tif:
        img = tif.series[0].asarray()
        scale = _read_scale(tif) if with_scale else None
    return (img, scale) if with_scale else img


def _existing(path):
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input {path} does not exist")
    return path


def _read_scale(tif):
    page = tif.pages[0]
    meta = tif.imagej_metadata or (tif.shaped_metadata[0] if tif.shaped_metadata else {}) or {}
    scale = {}
    unit = meta.get("unit")
    if unit is not None:
        scale["unit"] = "um" if str(unit) in _MICRON else str(unit)
    res_unit = int(page.tags["ResolutionUnit"].value) if "ResolutionUnit" in page.tags else 1
    for axis, tag in (("X", "XResolution"), ("Y", "YResolution")):
        if tag in page.tags:
            num, den = page.tags[tag].value
            if num and den and (num, den) != (1, 1):
                scale[axis] = den / num * _PER_UNIT_UM.get(res_unit, 1.0)  # inch/cm: absolute, in um
    if res_unit in _PER_UNIT_UM and ("X" in scale or "Y" in scale):
        scale["unit"] = "um"
    if meta.get("spacing") is not None:
        scale["Z"] = float(meta["spacing"])
    return scale


def _imagej_problem(img, axes):
    """Why ``img`` with ``axes`` cannot be an ImageJ hyperstack (None when it can)."""
    if axes is None:
        return "no axes given"
    if not set(axes) <= set(_IMAGEJ_ORDER) or list(axes) != sorted(axes, key=_IMAGEJ_ORDER.index):
        return f"ImageJ needs the axes in the order {_IMAGEJ_ORDER}, got {axes!r}"
    if img.dtype.type not in _IMAGEJ_DTYPES:
        return f"ImageJ does not store {img.dtype}"
    if any(n == 1 for n in img.shape):
        return "size-1 axes, which ImageJ files drop"
    return None


def write_tiff(path, img, *, axes=None, scale=None):
    """Write ``img`` atomically as a TIFF that keeps its axes and scale.

    An ImageJ hyperstack (axes, ``spacing``, ``unit`` and resolution, as Fiji reads them) when
    the axes, dtype and shape allow it; otherwise tifffile's shaped TIFF, which stores the
    exact shape and axes (read back by tifffile, e.g. a single-plane ZYX stack stays ZYX), the
    resolution tags and the scale (Fiji opens it as a plain stack).

    Parameters
    ----------
    path : str or pathlib.Path
    img : numpy.ndarray
    axes : str or None
        Axes of ``img``, e.g. ``'ZYX'``.
    scale : dict or None
        ``{'Z': ..., 'Y': ..., 'X': ..., 'unit': ...}`` (any subset), e.g. from
        ``read_tiff(..., with_scale=True)``.

    Returns
    -------
    pathlib.Path
    """
    import tifffile

    img = np.asarray(img)
    if axes is not None and len(axes) != img.ndim:
        raise ValueError(f"axes {axes!r} do not match the image to write with {img.ndim} dimensions {img.shape}")
    scale = dict(scale or {})
    unit = scale.get("unit")
    kw = {}
    if "X" in scale and "Y" in scale:
        kw["resolution"] = (1.0 / scale["X"], 1.0 / scale["Y"])
    problem = _imagej_problem(img, axes)
    meta = {k: v for k, v in (("axes", axes), ("spacing", scale.get("Z")), ("unit", unit)) if v is not None}
    if problem is None:
        kw.update(imagej=True, metadata=meta)
    else:
        if axes is not None and "size-1" not in problem:
            logger.warning("writing %s as a plain TIFF without ImageJ hyperstack axes (%s)", path, problem)
        if "resolution" in kw and unit == "um":
            kw.update(resolution=(1e4 / scale["X"], 1e4 / scale["Y"]), resolutionunit="CENTIMETER")
        kw.update(metadata=meta)
    return atomic_write(path, lambda tmp: tifffile.imwrite(tmp, img, **kw))
