"""``painmon simulate``: simulated wearables on LSL or MQTT, or a labelled dataset on disk."""

from __future__ import annotations

import argparse
import signal
import threading

from core import clock
from devices.simulator import PainSchedule, ScheduleError
from monitor.options import add_broker_options, broker_config

SCHEDULE_HELP = (
    "pain schedule: comma-separated LEVEL:SECONDS items, e.g. 'no:30,low:20,high:20,no:30' "
    "(levels no|baseline, low, high; repeats when it ends); 'demo' = the demo script "
    "(40 s no pain, then low, no, high, ...); 'random' = a random protocol per subject "
    "(default: demo when streaming, random for --write-dataset)"
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``painmon simulate`` and its options to the command line."""
    p = sub.add_parser(
        "simulate",
        help="simulated wearables (EDA, BVP, RESP, SpO2 + true pain markers) on LSL or MQTT",
        description="Stream physiologically plausible EDA/BVP/RESP/SpO2 of simulated subjects "
        "sim-1, sim-2, ... whose pain follows a schedule, plus a marker stream with the true "
        "level; or write a labelled dataset (AI4PAIN layout) with --write-dataset.",
    )
    p.add_argument("--subjects", type=int, default=1, metavar="N", help="number of subjects (default 1)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed: same seed, same subjects and signals")
    p.add_argument("--duration", type=float, default=None, metavar="SEC",
                   help="stop after SEC seconds (default: run until Ctrl-C; 600 for --write-dataset)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--lsl", action="store_true", help="publish LSL outlets (the default)")
    add_broker_options(p, address_group=out, help="publish to this MQTT broker instead")
    out.add_argument("--write-dataset", metavar="DIR", help="write a labelled dataset (AI4PAIN layout) and exit")
    p.add_argument("--schedule", default=None, metavar="SPEC", help=SCHEDULE_HELP)
    p.add_argument("--rates", default=None, metavar="M=HZ,...",
                   help="sampling rates, e.g. 'EDA=32,BVP=64' (default EDA 4, BVP 64, RESP 25, SpO2 1 Hz)")
    p.add_argument("--prefix", default="sim", help="subject id prefix (default 'sim' -> sim-1, sim-2, ...)")
    p.add_argument(
        "--fs", type=float, default=100.0,
        help="--write-dataset: sampling rate of the CSVs (default 100 Hz, as AI4PAIN)",
    )
    p.add_argument("--segment", type=float, default=None, metavar="SEC",
                   help="--write-dataset: cut episodes into SEC-second columns (default: one column per episode)")
    p.add_argument("--quiet", action="store_true", help="do not print level changes")
    p.set_defaults(func=run)


def parse_rates(text: str | None) -> dict[str, float] | None:
    """``"EDA=32,BVP=64"`` -> ``{"EDA": 32.0, "BVP": 64.0}`` (modality names case-insensitive)."""
    if not text:
        return None
    from core.modalities import canonical_name

    rates = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        canon = canonical_name(name)
        if not sep or canon is None:
            raise ValueError(f"bad rate {item.strip()!r}; expected MODALITY=HZ, e.g. EDA=32")
        try:
            rates[canon] = float(value)
        except ValueError:
            raise ValueError(f"bad rate {item.strip()!r}: {value!r} is not a number") from None
    return rates


def _schedules(args: argparse.Namespace, default: str) -> list[PainSchedule]:
    text = (args.schedule or default).strip()
    if text.lower() == "random":
        from devices.simulator import subject_seed

        horizon = args.duration or 3600.0
        return [PainSchedule.random(horizon, subject_seed(args.seed, i)) for i in range(args.subjects)]
    return [PainSchedule.parse(text)] * args.subjects


def run(args: argparse.Namespace) -> int:
    """Stream simulated subjects on LSL or MQTT, or write a dataset; 2 for invalid options."""
    try:
        if args.subjects < 1:
            raise ValueError(f"--subjects must be at least 1, got {args.subjects}")
        if args.duration is not None and args.duration <= 0:
            raise ValueError(f"--duration must be positive, got {args.duration}")
        rates = parse_rates(args.rates)
        if args.write_dataset:
            return _write_dataset(args)
        schedules = _schedules(args, "demo")
        from devices.simulator import SimulatedWearable

        wearable = SimulatedWearable(args.subjects, args.seed, schedules, rates, subject_prefix=args.prefix)
        publisher = _publisher(args, wearable)
    except (ValueError, ScheduleError) as exc:
        print(f"painmon simulate: error: {exc}")
        return 2
    return _stream(args, wearable, publisher)


def _write_dataset(args: argparse.Namespace) -> int:
    from devices.simulator import write_dataset

    duration = args.duration or 600.0
    schedule = None if (args.schedule or "random").lower() == "random" else PainSchedule.parse(args.schedule)
    fs = args.fs
    recs = write_dataset(args.write_dataset, args.subjects, duration, args.seed, fs=fs, schedule=schedule,
                         segment_s=args.segment)
    print(f"wrote {len(recs)} subject(s) x {duration:g} s at {fs:g} Hz to {args.write_dataset}")
    return 0


def _publisher(args: argparse.Namespace, wearable):
    config = broker_config(args)
    if config is not None:
        from devices.simulator import MQTTSimulator

        return MQTTSimulator(wearable, config)
    from devices.simulator import LSLSimulator

    return LSLSimulator(wearable)


def _stream(args: argparse.Namespace, wearable, publisher) -> int:
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    publisher.start()
    where = f"MQTT {args.mqtt}" if args.mqtt else "LSL"
    print(f"simulating {', '.join(wearable.subjects)} on {where} (seed {args.seed}); Ctrl-C to stop", flush=True)
    for spec in wearable.specs():
        print(f"  {spec.name:<20} {spec.modality:<8} {spec.nominal_rate:g} Hz", flush=True)
    mqtt = getattr(publisher, "publisher", None)
    if mqtt is not None and not mqtt.wait_connected(3.0):
        print(f"broker {args.mqtt} not reachable yet ({mqtt.stats().last_error or 'no answer'}); "
              "retrying, data are queued meanwhile", flush=True)
    last = {s: None for s in wearable.subjects}
    try:
        while not stop.wait(0.2):
            elapsed = clock.now() - publisher.t_start  # simulation time, as the publisher sees it
            if not args.quiet:
                for s in wearable.subjects:
                    level = wearable.level_at(s, elapsed)
                    if level != last[s]:
                        print(f"{elapsed:7.1f} s  {s}: pain:{level}", flush=True)
                        last[s] = level
            if publisher.error is not None:
                print(f"painmon simulate: error: {publisher.error}")
                return 1
            if args.duration is not None and elapsed >= args.duration:
                break
    except KeyboardInterrupt:
        pass
    finally:
        publisher.stop()
        signal.signal(signal.SIGTERM, previous)
    return 0
