"""``painmon bench NAME``: run one of the benchmarks.

Benchmarks depend on the library, never the other way round: this command does not import
them to build the command line. It finds them through the ``painmon.benchmarks`` entry-point
group (``pyproject.toml``; each entry names a ``main(argv) -> int``) and, in a source
checkout that is not installed, by the module names of the ``benchmarks`` folder, which
it imports only when one is run.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import pkgutil
from collections.abc import Callable
from importlib import metadata

GROUP = "painmon.benchmarks"
FALLBACK_PACKAGE = "benchmarks"


def _entry_points() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=GROUP)}


def _fallback_names() -> list[str]:
    """Modules of the ``benchmarks`` folder, found without importing it."""
    spec = importlib.util.find_spec(FALLBACK_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return []
    return [m.name for m in pkgutil.iter_modules(spec.submodule_search_locations) if not m.name.startswith("_")]


def available() -> list[str]:
    """Names of the benchmarks that can be run here."""
    return sorted(set(_entry_points()) | set(_fallback_names()))


def load(name: str) -> Callable[[list[str]], int]:
    """The ``main`` of benchmark ``name`` (imported now)."""
    ep = _entry_points().get(name)
    if ep is not None:
        return ep.load()
    if name not in _fallback_names():
        raise KeyError(name)
    return importlib.import_module(f"{FALLBACK_PACKAGE}.{name}").main


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``painmon bench NAME [ARGS...]``; the benchmark parses its own arguments."""
    p = sub.add_parser("bench", help="run a benchmark (" + ", ".join(available()) + ")")
    p.add_argument("name", help="benchmark name: " + ", ".join(available()))
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the named benchmark with the remaining arguments; 2 for an unknown name."""
    try:
        main = load(args.name)
    except KeyError:
        print(f"unknown benchmark {args.name!r}; available: {', '.join(available())}")
        return 2
    return int(main(args.args) or 0)
