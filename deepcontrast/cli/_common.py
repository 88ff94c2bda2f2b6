"""Helpers shared by the subcommands: argument parsing and safe file output."""
import os
from pathlib import Path


#: --surface choices: 'auto'/'auto-last' find each voxel's depth below the tissue's own surface
SURFACES = ("first", "last", "auto", "auto-last")
SURFACE_HELP = ("which end of Z is the tissue surface; auto (auto-last): light enters at the first (last) slice "
                "and each voxel's depth below the tissue's own, possibly curved, surface is found in the stack "
                "(spheroids, organoids, embryos)")


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
