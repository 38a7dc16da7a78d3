"""The ``plenox`` command: parse, validate, call the library, print."""

import argparse
import sys

from plenox import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="plenox", description=__doc__)
    parser.add_argument("--version", action="version", version=f"plenox {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
