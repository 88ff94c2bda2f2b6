"""The demo's output folder: created by the demo, or refused if it belongs to someone else."""
import json
import time
from pathlib import Path

from ..version import __version__

__all__ = ["MARKER", "prepare_out_dir"]

#: file the demo writes into every folder it creates, so that re-runs may reuse it
MARKER = ".deepcontrast_demo"


def prepare_out_dir(out_dir, overwrite=False):
    """Create the demo's output folder, refusing a non-empty folder the demo did not create.

    Parameters
    ----------
    out_dir : str or pathlib.Path
        Folder for everything the demo writes.
    overwrite : bool
        Write into ``out_dir`` even when it is not empty and was not created by the demo
        (files with the demo's names are replaced; nothing else is touched).

    Returns
    -------
    pathlib.Path
        The folder, which now exists. A folder the demo created (or found empty) gets the
        marker file :data:`MARKER`; a foreign folder used with ``overwrite`` does not.

    Raises
    ------
    FileExistsError
        If ``out_dir`` is a file, or a non-empty folder without the demo's marker and
        ``overwrite`` is false.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = prepare_out_dir(pathlib.Path(tempfile.mkdtemp()) / 'demo')
    >>> (d / MARKER).exists()
    True
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output {out} exists and is not a folder; choose another --out")
    foreign = out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists()
    if foreign and not overwrite:
        raise FileExistsError(
            f"output folder {out} is not empty and was not created by 'deepcontrast demo'; "
            "choose another --out, or pass --overwrite to write into it anyway"
        )
    out.mkdir(parents=True, exist_ok=True)
    marker = out / MARKER
    if not foreign and not marker.exists():  # a folder written into with --overwrite does not become ours
        marker.write_text(json.dumps({"created_by": "deepcontrast demo", "version": __version__,
                                      "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
    return out
