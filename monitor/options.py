"""Command-line option groups shared by every command (and benchmark) that needs them.

One function per concept adds the same options, with the same names, defaults and help,
wherever the concept appears, and one function turns the parsed options into the record
the library takes:

* :func:`add_model_options` / :func:`model_options`: ``--model``, ``--encoder``,
  ``--device``, ``--threads``, ``--precision`` and the subject-baseline options
  ``--baseline SEC``, ``--baseline-profiles``, ``--baseline-dir`` -> :class:`monitor.engine.ModelOptions`;
* :func:`add_broker_options` / :func:`broker_config`: ``--mqtt URL``, ``--mqtt-prefix``,
  ``--mqtt-user``, ``--mqtt-password-file``, ``--mqtt-tls``, ``--mqtt-ca``, ``--mqtt-cert``,
  ``--mqtt-key``, ``--mqtt-qos``, ``--mqtt-client-id``, ``--mqtt-retries`` ->
  :class:`devices.mqtt.MQTTConfig`. A broker address is parsed in one place,
  :meth:`devices.mqtt.MQTTConfig.from_hostport` (``host``, ``host:port``,
  ``[v6addr]:port``, ``mqtt://`` and ``mqtts://``; credentials in it are refused);
* :func:`add_ingest_options` / :func:`ingest_limits`: ``--max-subjects``,
  ``--subject-expiry``, ``--subject-pattern``, ``--rate-range`` ->
  :class:`devices.mqtt.IngestLimits`.
* :func:`add_lsl_options` / :func:`lsl_source`: ``--lsl``, ``--lsl-type``, ``--lsl-name``,
  ``--subject`` -> :class:`devices.lsl.LSLSource`;
* :func:`add_record_option`: ``--record FILE.xdf`` (a new file in an existing folder).

Defaults that depend on the command (the dashboard keeps its own device setting and one
core for the GUI) are ``None`` here and resolved where they apply, so ``--help`` reads the
same everywhere.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.modalities import RATE_RANGES_ENV
from core.wire import DEFAULT_TOPIC_PREFIX

if TYPE_CHECKING:
    from devices.lsl import LSLSource
    from devices.mqtt import IngestLimits, MQTTConfig
    from monitor.engine import ModelOptions


DEVICES = "auto|cpu|cuda|mps"
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
BACKENDS = ("torch", "openvino", "auto")
"""The encoder runtimes (:data:`core.encoder.BACKENDS`; kept here so --help needs no torch import)."""


# --- model ------------------------------------------------------------------------------
def add_model_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--encoder``, ``--device``, ``--threads``, ``--precision``, ``--backend`` and the
    baseline options (group "model")."""
    group = parser.add_argument_group("model")
    group.add_argument("--model", default=None, metavar="PATH", help="PainMon model file (default: bundled)")
    group.add_argument("--encoder", default=None, metavar="PATH",
                       help="encoder weights replacing the model file's own (e.g. Tiny-BioMoE.pth)")
    group.add_argument("--device", default=None, metavar="DEVICE",
                       help=f"compute device: {DEVICES} (default: auto; the dashboard: its setting)")
    group.add_argument("--threads", type=int, default=None, metavar="N",
                       help="CPU threads for the model, torch's and OpenVINO's (default: all cores; the dashboard "
                       "leaves one for the GUI)")
    group.add_argument("--precision", default=None, choices=PRECISIONS,
                       help="encoder precision (default: auto)")
    group.add_argument("--backend", default=None, choices=BACKENDS,
                       help="encoder runtime: torch (default), openvino (pip install 'painmon[openvino]'; "
                       "converted once and cached) or auto (openvino when installed, else torch)")
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
                        precision=args.precision, threads=args.threads, baseline=baseline,
                        backend=args.backend)


def regex(text: str) -> str:
    """An argparse type: a regular expression, compiled now so a typo is a usage error
    (one line, exit 2) before any source starts."""
    import re

    try:
        re.compile(text)
    except re.error as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a regular expression: {exc}") from None
    return text


# --- LSL --------------------------------------------------------------------------------
def add_lsl_options(group: Any, *, help: str) -> None:
    """``--lsl``, ``--lsl-type``, ``--lsl-name`` and ``--subject`` on ``group`` (a parser or
    an argument group): which LSL streams a command follows (:func:`lsl_source`)."""
    group.add_argument("--lsl", action="store_true", help=help)
    group.add_argument("--lsl-type", action="append", default=None, metavar="TYPE",
                       help="only LSL streams of this LSL type or modality (repeatable; implies --lsl)")
    group.add_argument("--lsl-name", type=regex, default=None, metavar="REGEX",
                       help="only LSL streams whose name matches (implies --lsl)")
    group.add_argument("--subject", default=None, metavar="ID", help="subject id for LSL streams that carry none")


def wants_lsl(args: argparse.Namespace) -> bool:
    """Whether the options ask for LSL input (``--lsl-type`` and ``--lsl-name`` imply ``--lsl``)."""
    return bool(args.lsl or args.lsl_type or args.lsl_name)


def lsl_predicate(subjects: Callable[[str], bool], types: list[str] | None, name_pattern: str | None):
    """Which discovered LSL streams to follow: ``subjects``' (a serve shard's, or all), of
    the requested types (LSL type or recognised modality), with a matching name."""
    import re

    from core.wire import ALARM_STREAM_TYPE

    wanted = {t.lower() for t in types} if types else None
    rx = re.compile(name_pattern) if name_pattern else None

    def accept(stream) -> bool:
        if not subjects(stream.subject) or stream.type == ALARM_STREAM_TYPE:  # not our own alarm streams
            return False
        if wanted is not None and stream.type.lower() not in wanted and (stream.modality or "").lower() not in wanted:
            return False
        return rx is None or rx.search(stream.name) is not None

    return accept


def lsl_source(args: argparse.Namespace, *, subjects: Callable[[str], bool] | None = None) -> LSLSource:
    """The LSL source the options of :func:`add_lsl_options` (and ingest limits) describe."""
    from devices.lsl import LSLSource

    predicate = lsl_predicate(subjects or (lambda _subject: True), args.lsl_type, args.lsl_name)
    return LSLSource(predicate=predicate, subject=args.subject, rate_ranges=ingest_limits(args).rate_ranges)


# --- recording --------------------------------------------------------------------------
def record_path(text: str) -> Path:
    """An argparse type: a new XDF file in an existing folder (checked now, so a typo is a
    usage error before anything starts; an existing file is never overwritten)."""
    path = Path(text).expanduser()
    if not text.strip():
        raise argparse.ArgumentTypeError("empty file name")
    if path.suffix.lower() not in (".xdf", ".xdfz"):
        raise argparse.ArgumentTypeError(f"{text!r}: give a .xdf file name")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a folder; give a file name inside it")
    if path.exists():
        raise argparse.ArgumentTypeError(f"{text!r} exists; choose a new name (recordings are never overwritten)")
    if not path.parent.is_dir():
        raise argparse.ArgumentTypeError(f"folder {str(path.parent)!r} does not exist")
    return path


def add_record_option(parser: argparse.ArgumentParser, *, help: str | None = None) -> None:
    """``--record FILE.xdf``: raw streams, markers, self-reports and estimates to one XDF file
    (through :meth:`monitor.pipeline.Pipeline.start_recording`)."""
    parser.add_argument(
        "--record", type=record_path, default=None, metavar="FILE.xdf",
        help=help or "record every stream, marker, self-report and estimate to this new XDF file",
    )


def startup_error(exc: BaseException) -> str:
    """The one line a command logs when it cannot start (a model that cannot load, a
    broker refusing the login): ``serve`` and headless ``replay`` say it alike, and a long
    library message (torch's advice on ``weights_only``) stays on one line."""
    return "cannot start: " + " ".join(str(exc).split())


# --- MQTT broker ------------------------------------------------------------------------
def broker_address(text: str) -> str:
    """An argparse type: a broker address :meth:`MQTTConfig.from_hostport` accepts (checked
    now, so a typo is a usage error; kept as text, the other broker options apply later).
    The text is not repeated in the error: it may hold a password."""
    from devices.mqtt import MQTTConfig

    try:
        MQTTConfig.from_hostport(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bad broker address: {exc}") from None
    return text


def add_broker_options(
    parser: argparse.ArgumentParser,
    *,
    address_group: Any = None,
    help: str = "MQTT broker",
) -> None:
    """The broker options of every command that talks MQTT (group "MQTT").

    ``address_group``: where ``--mqtt`` itself goes (e.g. a mutually exclusive group of
    outputs); the other options go into an "MQTT" group of ``parser``. No option takes a
    password: it comes from ``$PAINMON_MQTT_PASSWORD`` or ``--mqtt-password-file``, so it
    never shows in ``ps``."""
    from devices.mqtt import PASSWORD_ENV, MQTTConfig

    retries = MQTTConfig.auth_retries
    group = parser.add_argument_group("MQTT")
    (address_group or group).add_argument(
        "--mqtt", type=broker_address, default=None, metavar="URL",
        help=f"{help}: HOST[:PORT], [IPv6]:PORT, mqtt://HOST:PORT or mqtts://HOST:PORT (TLS); "
        "no credentials in the URL",
    )
    group.add_argument("--mqtt-prefix", default=DEFAULT_TOPIC_PREFIX, metavar="PREFIX",
                       help=f"MQTT topic prefix (default: {DEFAULT_TOPIC_PREFIX})")
    group.add_argument("--mqtt-user", default=None, metavar="NAME",
                       help=f"MQTT user name (password from ${PASSWORD_ENV} or --mqtt-password-file)")
    group.add_argument("--mqtt-password-file", default=None, metavar="PATH",
                       help="file whose first line is the MQTT password (must not be readable by others)")
    group.add_argument("--mqtt-tls", action="store_true", help="connect to the broker with TLS (as mqtts://)")
    group.add_argument("--mqtt-ca", default=None, metavar="PEM",
                       help="CA certificate(s) the broker's certificate must chain to (default: system store)")
    group.add_argument("--mqtt-cert", default=None, metavar="PEM", help="client certificate (TLS client auth)")
    group.add_argument("--mqtt-key", default=None, metavar="PEM", help="private key of --mqtt-cert")
    group.add_argument("--mqtt-qos", type=int, choices=(0, 1, 2), default=1,
                       help="MQTT QoS of subscriptions and publications (default 1: nothing lost on reconnect)")
    group.add_argument("--mqtt-client-id", default=None, metavar="ID",
                       help="client id of the subscriber; with it the broker keeps a persistent session "
                       "(subscription and queued messages survive a reconnect)")
    group.add_argument("--mqtt-retries", type=int, default=retries, metavar="N",
                       help=f"refused logins/certificates before giving up (default {retries}; "
                       "0: retry forever); an unreachable broker is always retried")


def broker_config(args: argparse.Namespace, *, ingest: bool = False) -> MQTTConfig | None:
    """The broker the options name, or None without ``--mqtt``.

    ``ingest``: for the subscriber (a ``--mqtt-client-id`` then makes its session
    persistent); publishers connect with a fresh id and a clean session. The password is
    read from ``--mqtt-password-file`` or ``$PAINMON_MQTT_PASSWORD``, and only with a user name.
    Raises :class:`devices.mqtt.MQTTConfigError` (one line, no secret) for unusable settings.
    """
    if not args.mqtt:
        return None
    from devices.mqtt import MQTTConfig, MQTTConfigError, load_password

    options: dict[str, Any] = {"prefix": args.mqtt_prefix, "qos": getattr(args, "mqtt_qos", 0)}
    ca, cert, key = (getattr(args, name, None) for name in ("mqtt_ca", "mqtt_cert", "mqtt_key"))
    if args.mqtt_tls or ca or cert:  # else the scheme decides (mqtts:// turns TLS on)
        options["tls"] = True
    options.update(ca_file=ca, certfile=cert, keyfile=key)
    password_file = getattr(args, "mqtt_password_file", None)
    if args.mqtt_user:
        options["username"] = args.mqtt_user
        options["password"] = load_password(password_file)
    elif password_file:
        raise MQTTConfigError("--mqtt-password-file needs --mqtt-user")
    retries = getattr(args, "mqtt_retries", MQTTConfig.auth_retries)
    if retries is not None and retries < 0:
        raise MQTTConfigError(f"--mqtt-retries must be 0 (forever) or more, got {retries}")
    options["auth_retries"] = retries or None
    client_id = getattr(args, "mqtt_client_id", None)
    if ingest and client_id:
        options.update(client_id=client_id, clean_session=False)
    return MQTTConfig.from_hostport(args.mqtt, **options)


# --- ingest limits ----------------------------------------------------------------------
def add_ingest_options(parser: argparse.ArgumentParser) -> None:
    """Limits of what a broker's senders may make PainMon hold (group "ingest limits")."""
    from devices.mqtt import IngestLimits

    d = IngestLimits()
    group = parser.add_argument_group("ingest limits")
    group.add_argument("--max-subjects", type=int, default=d.max_subjects, metavar="N",
                       help=f"subjects held at once (default {d.max_subjects}); new ids only displace "
                       "subjects still on probation, never established ones")
    group.add_argument("--subject-expiry", type=float, default=d.idle_expiry_s, metavar="SEC",
                       help=f"forget a subject silent this long, releasing its buffers and outlet "
                       f"(default {d.idle_expiry_s:g})")
    group.add_argument("--subject-pattern", type=regex, default=None, metavar="REGEX",
                       help="only take subject ids matching this regular expression entirely (allow-list)")
    group.add_argument("--rate-range", action="append", default=None, metavar="MOD=LOW-HIGH",
                       help="plausible device rate of a modality in Hz, e.g. EDA=0.5-2000 (repeatable; "
                       f"also ${RATE_RANGES_ENV})")


def ingest_limits(args: argparse.Namespace) -> IngestLimits:
    """The parsed ingest limits (ValueError, one line, for bad values)."""
    from core.modalities import parse_rate_ranges
    from devices.mqtt import IngestLimits

    ranges = parse_rate_ranges(",".join(args.rate_range)) if args.rate_range else None
    return IngestLimits(
        max_subjects=args.max_subjects,
        idle_expiry_s=args.subject_expiry,
        subject_pattern=args.subject_pattern,
        rate_ranges=ranges,
    )
