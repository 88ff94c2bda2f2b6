"""Former home of the file helpers; they live in :mod:`deepcontrast.internals` now."""
from .internals.files import atomic_write, to_jsonable
from .internals.tiff import read_tiff, write_tiff

__all__ = ["atomic_write", "write_tiff", "read_tiff", "to_jsonable"]
