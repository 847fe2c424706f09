"""The ``painmon`` command line: discovers the subcommands in :mod:`monitor.commands`.

An uncaught :class:`core.errors.PainMonError` (something PainMon refused on purpose: a
missing model file, a bad setting) ends the command with its message on one line and exit
code 1, not a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys

import monitor.commands as commands_pkg
from core.errors import PainMonError

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The ``painmon`` parser with one subcommand per module of :mod:`monitor.commands` that has ``register``."""
    parser = argparse.ArgumentParser(
        prog="painmon",
        description="PainMon: real-time pain estimation from wearable biosignals "
        "(research tool, not a clinical device).",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands_pkg.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    return parser


def configure_logging(verbosity: int) -> None:
    """Root logging at WARNING, INFO (``-v``) or DEBUG (``-vv``)."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``painmon``: run the chosen subcommand; returns its exit code (1 for a :class:`PainMonError`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    from devices.lsl import quiet_liblsl

    quiet_liblsl()  # before any command touches LSL (a no-op once done)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except PainMonError as exc:
        print(f"painmon {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
