"""``painmon bench NAME``: run one of the benchmarks in :mod:`benchmarks`."""

from __future__ import annotations

import argparse
import importlib
import pkgutil


def _available() -> list[str]:
    import benchmarks

    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if not m.name.startswith("_"))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="run a benchmark (encoder, representations, realtime, gui)")
    p.add_argument("name", help="benchmark name: " + ", ".join(_available()))
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the benchmark")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.name not in _available():
        print(f"unknown benchmark {args.name!r}; available: {', '.join(_available())}")
        return 2
    module = importlib.import_module(f"benchmarks.{args.name}")
    return int(module.main(args.args) or 0)
