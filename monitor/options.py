"""Command-line option groups shared by every command (and benchmark) that needs them.

One function per concept adds the same options, with the same names, defaults and help,
wherever the concept appears, and one function turns the parsed options into the record
the library takes:

* :func:`add_model_options` / :func:`model_options`: ``--model``, ``--encoder``,
  ``--device``, ``--threads``, ``--precision`` and the subject-baseline options
  ``--baseline SEC``, ``--baseline-profiles``, ``--baseline-dir`` -> :class:`monitor.engine.ModelOptions`;
* :func:`add_broker_options` / :func:`broker_config`: ``--mqtt URL``, ``--mqtt-prefix``,
  ``--mqtt-user``, ``--mqtt-tls`` -> :class:`devices.mqtt.MQTTConfig`. A broker address is
  parsed in one place, :meth:`devices.mqtt.MQTTConfig.from_hostport` (``host``,
  ``host:port``, ``[v6addr]:port``, ``mqtt://`` and ``mqtts://``).

Defaults that depend on the command (the dashboard keeps its own device setting and one
core for the GUI) are ``None`` here and resolved where they apply, so ``--help`` reads the
same everywhere.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING, Any

from core.wire import DEFAULT_TOPIC_PREFIX

if TYPE_CHECKING:
    from devices.mqtt import MQTTConfig
    from monitor.engine import ModelOptions

PASSWORD_ENV = "PAINMON_MQTT_PASSWORD"
"""Where the broker password comes from (never a command-line argument: ``ps`` shows those)."""

DEVICES = "auto|cpu|cuda|mps"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# --- model ------------------------------------------------------------------------------
def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--encoder``, ``--device``, ``--threads``, ``--precision`` (group "model")."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=None, metavar="PATH", help="PainMon model file (default: bundled)")
    group.add_argument("--encoder", default=None, metavar="PATH",
                       help="encoder weights replacing the model file's own (e.g. Tiny-BioMoE.pth)")
    group.add_argument("--device", default=None, metavar="DEVICE",
                       help=f"compute device: {DEVICES} (default: auto; the dashboard: its setting)")
    group.add_argument("--threads", type=int, default=None, metavar="N",
                       help="torch CPU threads for the model (default: all cores; the dashboard leaves one "
                       "for the GUI)")
    group.add_argument("--precision", default=None, choices=PRECISIONS,
                       help="encoder precision (default: auto)")
    group.add_argument("--baseline", type=float, default=60.0, metavar="SEC",
                       help="learn each subject's baseline from its first SEC s of good signal, then estimate "
                       "relative to it (default 60; 0: only from baseline:start/end markers or a profile)")
    group.add_argument("--baseline-profiles", default="save", choices=("off", "save", "load"),
                       help="subject baseline files: save learnt ones (default), also load saved ones at a "
                       "subject's start, or off")
    group.add_argument("--baseline-dir", default=None, metavar="DIR",
                       help="folder of the baseline profiles (default $PAINMON_BASELINES or "
                       "$XDG_DATA_HOME/painmon/baselines)")


def model_options(args: argparse.Namespace) -> ModelOptions:
    """The parsed model options as the record the engine and the dashboard take."""
    from monitor.engine import BaselineOptions, ModelOptions

    try:
        baseline = BaselineOptions(duration_s=args.baseline, profiles=args.baseline_profiles, folder=args.baseline_dir)
    except ValueError as exc:
        raise SystemExit(f"painmon: {exc}") from None
    return ModelOptions(model_path=args.model, encoder_path=args.encoder, device=args.device,
                        precision=args.precision, threads=args.threads, baseline=baseline)


# --- MQTT broker ------------------------------------------------------------------------
def broker_address(text: str) -> str:
    """An argparse type: a broker address :meth:`MQTTConfig.from_hostport` accepts (checked
    now, so a typo is a usage error; kept as text, the other broker options apply later)."""
    from devices.mqtt import MQTTConfig

    try:
        MQTTConfig.from_hostport(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"broker {text!r}: {exc}") from None
    return text


def add_broker_options(
    parser: argparse.ArgumentParser,
    *,
    address_group: Any = None,
    help: str = "MQTT broker",
) -> None:
    """``--mqtt URL``, ``--mqtt-prefix``, ``--mqtt-user``, ``--mqtt-tls``.

    ``address_group``: where ``--mqtt`` itself goes (e.g. a mutually exclusive group of
    outputs); the other options go into an "MQTT" group of ``parser``."""
    group = parser.add_argument_group("MQTT")
    (address_group or group).add_argument(
        "--mqtt", type=broker_address, default=None, metavar="URL",
        help=f"{help}: HOST[:PORT], [IPv6]:PORT, mqtt://HOST:PORT or mqtts://HOST:PORT (TLS)",
    )
    group.add_argument("--mqtt-prefix", default=DEFAULT_TOPIC_PREFIX, metavar="PREFIX",
                       help=f"MQTT topic prefix (default: {DEFAULT_TOPIC_PREFIX})")
    group.add_argument("--mqtt-user", default=None, metavar="NAME",
                       help=f"MQTT user name (password from ${PASSWORD_ENV})")
    group.add_argument("--mqtt-tls", action="store_true", help="connect to the broker with TLS (as mqtts://)")


def broker_config(args: argparse.Namespace) -> MQTTConfig | None:
    """The broker the options name, or None without ``--mqtt``. The password is read from
    :data:`PASSWORD_ENV`, and only with a user name."""
    if not args.mqtt:
        return None
    from devices.mqtt import MQTTConfig

    options: dict[str, Any] = {"prefix": args.mqtt_prefix}
    if args.mqtt_tls:  # else the scheme decides (mqtts:// turns TLS on)
        options["tls"] = True
    if args.mqtt_user:
        options["username"] = args.mqtt_user
        options["password"] = os.environ.get(PASSWORD_ENV)
    return MQTTConfig.from_hostport(args.mqtt, **options)
