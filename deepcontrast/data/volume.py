"""Volumes read lazily, region by region: numpy, dask and zarr arrays, zarr/OME-Zarr folders, TIFFs.

A :class:`Volume` gives the shape and dtype of a volume without reading it and reads any
region as a numpy array. TIFFs are read through ``tifffile.imread(path, aszarr=True)`` (a
zarr store over the file's strips or tiles; BigTIFF included), so only the strips a region
touches are read. A volume opened from a path pickles as its path and reopens itself where
it is unpickled (e.g. on a dask worker). zarr and dask are imported only when needed.
"""
import hashlib
from pathlib import Path

import numpy as np

__all__ = ["Volume", "open_volume", "sample_stride"]

#: voxels read for the checksum that tells whether a volume changed
CHECKSUM_VOXELS = 2**16


class Volume:
    """A volume read region by region (see :func:`open_volume`).

    Attributes
    ----------
    shape : tuple of int
    dtype : numpy.dtype
    name : str
        The path, or a description of the in-memory array.
    """

    def __init__(self, array, name, path=None):
        self._array = array
        self._path = path
        self.name = name
        self.shape = tuple(int(n) for n in array.shape)
        self.dtype = np.dtype(array.dtype)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def nbytes(self):
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize

    def read(self, region):
        """The region (a tuple of slices, steps allowed) as a numpy array."""
        a = self._array[tuple(region)]
        if hasattr(a, "compute"):  # dask: compute this region only, in this thread
            a = a.compute(scheduler="sync")
        return np.asarray(a)

    def __getitem__(self, region):
        return self.read(region if isinstance(region, tuple) else (region,))

    def __reduce__(self):
        if self._path is not None:
            return open_volume, (self._path,)
        return Volume, (self._array, self.name, None)

    def signature(self):
        """Shape, dtype, bytes and a checksum of a strided sample: changes when the volume does."""
        step = sample_stride(self.shape, CHECKSUM_VOXELS)
        sample = self.read(tuple(slice(None, None, step) for _ in self.shape))
        digest = hashlib.blake2b(np.ascontiguousarray(sample).tobytes(), digest_size=16).hexdigest()
        return {"shape": list(self.shape), "dtype": self.dtype.str, "nbytes": self.nbytes, "checksum": digest}


def open_volume(source, *, name=None):
    """Open a volume lazily.

    Parameters
    ----------
    source : numpy.ndarray, dask.array.Array, zarr.Array, Volume, str or pathlib.Path
        An array, a zarr array or folder (``.zarr``; for an OME-Zarr image its full-resolution
        level), or a TIFF file (``.tif``/``.tiff``, read through ``tifffile``'s zarr store).
    name : str or None
        Name used in messages (default: the path or the type).

    Returns
    -------
    Volume

    Raises
    ------
    FileNotFoundError
        A path that does not exist.
    ValueError
        A path that is neither a TIFF nor a zarr array/OME-Zarr image, or a non-numeric array.

    Examples
    --------
    >>> import numpy as np
    >>> v = open_volume(np.zeros((4, 32, 32), np.uint16))
    >>> v.shape, v.read((slice(0, 2), slice(None), slice(0, 8))).shape
    ((4, 32, 32), (2, 32, 8))
    """
    if isinstance(source, Volume):
        return source
    if isinstance(source, (str, Path)):
        path = str(source)
        return Volume(_open_path(path), name or path, path)
    if not hasattr(source, "shape") or not hasattr(source, "dtype"):
        source = np.asarray(source)
    if not (np.issubdtype(np.dtype(source.dtype), np.number) or np.dtype(source.dtype) == bool):
        raise ValueError(f"volume must hold real numbers, got dtype {source.dtype}")
    return Volume(source, name or f"{type(source).__module__.split('.')[0]} array of shape {tuple(source.shape)}")


def _open_path(path):
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"volume {p} does not exist")
    if p.is_file() and p.name.lower().endswith((".tif", ".tiff")):
        return _open_tiff(p)
    if p.is_dir():
        return _open_zarr(p)
    raise ValueError(f"cannot read {p}: give a TIFF file (.tif/.tiff) or a zarr/OME-Zarr folder")


def _open_tiff(path):
    import tifffile
    import zarr

    try:
        z = zarr.open(tifffile.imread(path, aszarr=True, level=0), mode="r")
    except Exception as e:
        raise ValueError(f"cannot read {path} as a TIFF ({type(e).__name__}: {e}); remove or replace it") from None
    return z


def _open_zarr(path):
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as e:
        raise ValueError(f"cannot read {path} as zarr ({type(e).__name__}: {e}); give a zarr array or "
                         "OME-Zarr image folder") from None
    if isinstance(node, zarr.Array):
        return node
    multiscales = node.attrs.get("multiscales") or node.attrs.get("ome", {}).get("multiscales")
    if not multiscales:
        raise ValueError(f"zarr group {path} is not an OME-Zarr image (no 'multiscales' metadata); give the path "
                         f"of the array itself, e.g. {Path(path) / '0'}")
    return node[multiscales[0]["datasets"][0]["path"]]


def sample_stride(shape, max_voxels):
    """Smallest common step along every axis with at most ``max_voxels`` voxels in the sample.

    Parameters
    ----------
    shape : sequence of int
        Shape of the array sampled with ``slice(None, None, step)`` along every axis.
    max_voxels : float
        Largest number of voxels the sample may hold.

    Returns
    -------
    int
        The step (1 when the whole array fits).

    Examples
    --------
    >>> sample_stride((100, 100), 2500)
    2
    """
    step = 1
    while np.prod([-(-n // step) for n in shape], dtype=float) > max_voxels:
        step += 1
    return step
