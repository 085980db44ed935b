"""The `acqsynth` command line: parses arguments and dispatches to the library."""

from acqsynth.cli.commands import build_parser, main

__all__ = ["build_parser", "main"]
