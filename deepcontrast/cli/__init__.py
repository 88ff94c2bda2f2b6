"""The ``deepcontrast`` command line.

Each subcommand lives in its own module of this package and exposes
``add_parser(subparsers)`` (which registers the subcommand and sets ``func``) and is listed
in ``SUBCOMMANDS``. Heavy imports (TensorFlow) happen inside the subcommand, never here, so
``deepcontrast --help`` is instant.
"""
import argparse
import importlib
import logging
import sys
import traceback

from ..version import __version__

#: subcommand modules, in the order shown by ``--help``
SUBCOMMANDS = ["demo", "degrade", "datagen", "train", "predict", "evaluate", "export"]


def build_parser():
    """Build the argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(
        prog="deepcontrast",
        description="Contrast restoration for deep-tissue fluorescence microscopy "
        "(DeepContrast, built on CSBDeep).",
    )
    parser.add_argument("--version", action="version", version=f"deepcontrast {__version__}")
    parser.add_argument("-v", "--verbose", "--debug", action="store_true",
                        help="log debugging details and show the traceback of an error")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv=None):
    """Entry point of the ``deepcontrast`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s: %(message)s"
    )
    if not hasattr(args, "func"):
        parser.print_help()
        return 2
    try:
        status = args.func(args)
    except (ValueError, OSError) as e:  # FileNotFoundError/FileExistsError are OSErrors
        if args.verbose:
            traceback.print_exc()
        print(f"deepcontrast {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if args.verbose:
            traceback.print_exc()
        print(f"deepcontrast {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0 if status is None else int(status)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
