"""``painmon demo``: the dashboard on a simulated wearable with a scripted pain schedule."""

from __future__ import annotations

import argparse

from monitor.options import add_model_options, model_options


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``painmon demo`` and its options to the command line."""
    p = sub.add_parser(
        "demo",
        help="open the dashboard on simulated subjects (over LSL) with the bundled model",
        description="Starts simulated wearables (EDA, BVP, RESP, SpO2) whose pain follows a scripted "
        "schedule, publishes them on LSL, and shows them with live pain estimates.",
    )
    p.add_argument("--subjects", type=int, default=1, help="number of simulated subjects (default 1)")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    p.add_argument("--duration", type=float, default=None, metavar="SEC", help="quit after SEC seconds")
    p.add_argument("--screenshot", default=None, metavar="PNG", help="save the window to PNG before quitting")
    add_model_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Start the simulated subjects and open the dashboard on them; 2 for invalid options."""
    if args.subjects < 1:
        print(f"painmon demo: --subjects must be at least 1, got {args.subjects}")
        return 2
    if args.duration is not None and args.duration <= 0:
        print(f"painmon demo: --duration must be positive, got {args.duration}")
        return 2
    if args.screenshot is not None and args.duration is None:
        print("painmon demo: --screenshot needs --duration (the screenshot is taken before quitting)")
        return 2
    from monitor.gui.app import run_demo

    return run_demo(
        subjects=args.subjects, seed=args.seed, duration=args.duration,
        screenshot=args.screenshot, model=model_options(args),
    )
