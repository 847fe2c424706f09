"""Find LSL streams on the network and map each to a subject and modality.

Used by :class:`devices.lsl.LSLSource` for its continuous discovery and by the dashboard's
connect dialog (:func:`discover`), so both agree on what a stream is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pylsl

from core.limits import BAD_FORMAT, DeclarationError
from core.modalities import check_declared, match_modality
from core.streams import MARKERS, StreamSpec
from core.wire import own_output_kind
from devices.lsl._info import InfoFields, read_info, subject_from_source_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiscoveredStream:
    """One LSL stream as PainMon sees it (plain values; safe to show in a dialog)."""

    name: str
    type: str
    source_id: str
    channel_labels: tuple[str, ...]
    rate: float
    """Nominal rate in Hz, 0 for irregular streams."""
    format: str
    """``float32``, ``double64``, ``int16``, ``string``, ..."""
    hostname: str
    subject: str
    """Guessed: ``<desc><subject>``, else the configured subject, else from source_id/hostname."""
    modality: str | None
    """Canonical modality, :data:`core.streams.MARKERS` for string streams, None if unknown."""
    units: str = ""
    uid: str = ""
    own_output: str = ""
    """The kind of PainMon output this stream is (``estimate``, ``alarm``, ``selfreport``;
    :data:`core.wire.OUTPUT_STREAMS`), ``""`` for a signal or marker stream."""
    refused: str = ""
    """Why PainMon will not follow this stream (what it declares is out of bounds, see
    :func:`check_declaration`); empty when it may. A refused stream has no spec."""

    @property
    def identity(self) -> str:
        """What stays the same when a device's outlet restarts (the uid does not)."""
        return self.source_id or f"{self.name}|{self.type}|{self.hostname}"

    def spec(self) -> StreamSpec | None:
        """The :class:`StreamSpec` to register, or None when the modality is unknown or the
        stream is refused or is one of PainMon's own outputs."""
        if self.modality is None or self.refused or self.own_output:
            return None
        return StreamSpec(
            subject=self.subject,
            modality=self.modality,
            channels=self.channel_labels,
            nominal_rate=0.0 if self.modality == MARKERS else self.rate,
            units=self.units,
            name=self.name,
            source_id=self.source_id,
        )


Predicate = str | Callable[[DiscoveredStream], bool]
"""An LSL XPath predicate (``"name='X' and type='EDA'"``) or a Python test of a stream."""

_FORMATS = {
    pylsl.cf_float32: "float32", pylsl.cf_double64: "double64", pylsl.cf_string: "string",
    pylsl.cf_int32: "int32", pylsl.cf_int16: "int16", pylsl.cf_int8: "int8", pylsl.cf_int64: "int64",
}


MARKER_TYPES = ("markers", "marker", "events")
"""Stream types (lower case) of event streams, whatever their sample format."""


def check_declaration(
    info: pylsl.StreamInfo,
    overrides: Mapping[str, str] | None = None,
    *,
    rate_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> None:
    """Refuse a stream whose *header* declares what PainMon will not allocate for.

    Reads only the header fields every resolved info carries (type, name, rate, channel
    count, format; not ``<desc>``, whose channel list a hostile header could make huge),
    so it runs before any inlet exists: liblsl sizes an inlet's queue by the declared rate
    and our pulls by rate x channels. The modality is guessed from type and name (channel
    labels may name a stricter one later: :func:`describe` checks again). The limits are
    those of every source (:func:`core.modalities.check_declared`, ``rate_ranges``
    overriding plausible rates); LSL's irregular rate (0) is allowed.
    Raises :class:`core.limits.DeclarationError`.
    """
    fmt = info.channel_format()
    stype = info.type()
    marker_type = stype.strip().lower() in MARKER_TYPES
    if fmt not in _FORMATS:
        raise DeclarationError(BAD_FORMAT, f"unknown channel format {fmt}")
    if fmt == pylsl.cf_string and not marker_type:
        biosignal = match_modality(stype, (), "", overrides)  # what the type says, not the name
        if biosignal is not None:
            raise DeclarationError(BAD_FORMAT, f"text samples declared for a {biosignal} stream")
    modality = MARKERS if fmt == pylsl.cf_string or marker_type else match_modality(stype, (), info.name(), overrides)
    check_declared(modality, float(info.nominal_srate()), int(info.channel_count()), irregular_ok=True,
                   rate_ranges=rate_ranges)


def refusal(info: pylsl.StreamInfo, overrides: Mapping[str, str] | None = None) -> str:
    """``check_declaration``'s verdict as text: empty when the stream may be followed."""
    try:
        check_declaration(info, overrides)
    except DeclarationError as exc:
        return str(exc)
    return ""


def refused_stream(
    info: pylsl.StreamInfo, why: str, configured_subject: str | None = None, overrides: Mapping[str, str] | None = None
) -> DiscoveredStream:
    """A :class:`DiscoveredStream` of a refused stream, from its header only (no inlet is
    opened for it, so no ``<desc>``: no channel labels, subject from the source id/host)."""
    fields = InfoFields(
        name=info.name(), type=info.type(), source_id=info.source_id(), uid=info.uid(),
        hostname=info.hostname(), channel_count=int(info.channel_count()),
        nominal_rate=float(info.nominal_srate()), channel_format=info.channel_format(),
        channel_labels=(), units="", subject_in_desc="",
    )
    return DiscoveredStream(
        name=fields.name, type=fields.type, source_id=fields.source_id, channel_labels=(),
        rate=fields.nominal_rate, format=_FORMATS.get(fields.channel_format, str(fields.channel_format)),
        hostname=fields.hostname, subject=guess_subject(fields, configured_subject),
        modality=guess_modality(fields, overrides), uid=fields.uid, refused=why,
    )


def guess_subject(fields: InfoFields, configured: str | None = None) -> str:
    """The subject a stream belongs to.

    Order: the stream's own ``<desc><subject>``; the configured subject; the subject in a
    PainMon source_id (``painmon:<subject>:<modality>``); the stream's hostname (devices of
    one person usually stream from one phone/laptop); its source_id; ``"unknown"``.
    """
    return (
        fields.subject_in_desc
        or (configured or "")
        or subject_from_source_id(fields.source_id)
        or fields.hostname
        or fields.source_id
        or "unknown"
    )


def guess_modality(fields: InfoFields, overrides: Mapping[str, str] | None = None) -> str | None:
    """Canonical modality from type / channel labels / name; string streams are markers."""
    if fields.is_string or fields.type.strip().lower() in MARKER_TYPES:
        return MARKERS
    return match_modality(fields.type, fields.channel_labels, fields.name, overrides)


def own_output(fields: InfoFields) -> str:
    """The kind of PainMon output a stream is (``""``: none), by its type or by its name for
    its own subject (:func:`core.wire.own_output_kind`). Estimates are float streams whose
    channel labels need not match a modality, but alarm streams are strings and would pass
    for markers: without this, a monitor on a ``serve``'s network would ingest them."""
    subject = fields.subject_in_desc or subject_from_source_id(fields.source_id)
    return own_output_kind(fields.type, fields.name, subject)


def own_output_header(info: pylsl.StreamInfo) -> str:
    """:func:`own_output` from a resolved info's header (no ``<desc>``, so the subject comes
    from a PainMon ``source_id`` only): lets a source skip an output without opening it."""
    return own_output_kind(info.type(), info.name(), subject_from_source_id(info.source_id()))


def describe(info: pylsl.StreamInfo, subject: str | None = None,
             overrides: Mapping[str, str] | None = None, *,
             rate_ranges: Mapping[str, tuple[float, float]] | None = None) -> DiscoveredStream:
    """A :class:`DiscoveredStream` for a resolved ``StreamInfo`` whose header passed
    :func:`check_declaration`; ``refused`` is set when the modality the full info reveals
    (by channel labels) does not allow what the stream declares."""
    f = read_info(info)
    modality = guess_modality(f, overrides)
    refused = ""
    if modality is not None:
        try:
            check_declared(modality, f.nominal_rate, f.channel_count, irregular_ok=True, rate_ranges=rate_ranges)
        except DeclarationError as exc:
            refused = str(exc)
    return DiscoveredStream(
        name=f.name, type=f.type, source_id=f.source_id, channel_labels=f.channel_labels,
        rate=f.nominal_rate, format=_FORMATS.get(f.channel_format, str(f.channel_format)),
        hostname=f.hostname, subject=guess_subject(f, subject), modality=modality,
        units=f.units, uid=f.uid, refused=refused, own_output=own_output(f),
    )


def full_info(info: pylsl.StreamInfo, timeout: float = 1.0) -> pylsl.StreamInfo:
    """The stream's full info, with ``<desc>`` (resolved infos carry only the header)."""
    inlet = pylsl.StreamInlet(info, recover=False)
    try:
        return inlet.info(timeout=timeout)
    finally:
        inlet.close_stream()


def _try_full_info(info: pylsl.StreamInfo, timeout: float) -> pylsl.StreamInfo | None:
    try:
        return full_info(info, timeout)
    except Exception as exc:  # noqa: BLE001 - vanished since it answered; not worth failing the dialog
        log.info("LSL stream %s did not answer: %s", info.name(), exc)
        return None


def xpath_filter(name: str | None = None, stream_type: str | None = None, source_id: str | None = None,
                 predicate: Predicate | None = None) -> str | None:
    """The LSL XPath predicate for the given filters (None = all streams)."""
    parts = []
    for key, value in (("name", name), ("type", stream_type), ("source_id", source_id)):
        if value is not None:
            if "'" in value:
                raise ValueError(f"{key} {value!r} must not contain a single quote")
            parts.append(f"{key}='{value}'")
    if isinstance(predicate, str) and predicate.strip():
        parts.append(f"({predicate})")
    return " and ".join(parts) or None


def accepts(stream: DiscoveredStream, predicate: Predicate | None) -> bool:
    """Apply a Python predicate (XPath predicates were applied by LSL already)."""
    if predicate is None or isinstance(predicate, str):
        return True
    try:
        return bool(predicate(stream))
    except Exception:
        log.exception("stream predicate failed on %s; stream ignored", stream.name)
        return False


def discover(
    timeout: float = 1.0,
    *,
    name: str | None = None,
    stream_type: str | None = None,
    source_id: str | None = None,
    predicate: Predicate | None = None,
    subject: str | None = None,
    modality_overrides: Mapping[str, str] | None = None,
) -> list[DiscoveredStream]:
    """All LSL streams visible within ``timeout`` seconds that pass the filters.

    Streams whose modality cannot be guessed are included with ``modality=None`` so a
    connect dialog can offer to map them; :meth:`DiscoveredStream.spec` is None for them.
    PainMon's own outputs (estimates, alarms, self-reports of a ``serve`` or a dashboard on
    the same network) are left out: they are not signals, and nobody should map them to one.
    Streams whose header declares what PainMon will not allocate for are included with
    :attr:`DiscoveredStream.refused` saying why, and are never opened.
    """
    xpath = xpath_filter(name, stream_type, source_id, predicate)
    if xpath is None:
        infos = pylsl.resolve_streams(wait_time=timeout)
    else:
        infos = pylsl.resolve_bypred(xpath, minimum=0, timeout=timeout)
    unique = list({i.uid(): i for i in infos}.values())  # one per outlet even if seen twice
    verdicts = [(i, refusal(i, modality_overrides)) for i in unique]
    found = [refused_stream(i, why, subject, modality_overrides) for i, why in verdicts if why]
    unique = [i for i, why in verdicts if not why]
    if unique:
        # fetch the full infos in parallel: one slow or frozen outlet must not delay the rest
        with ThreadPoolExecutor(max_workers=min(16, len(unique))) as pool:
            fulls = list(pool.map(lambda i: _try_full_info(i, timeout), unique))
        found += [describe(f, subject, modality_overrides) for f in fulls if f is not None]
    for s in found:
        if s.own_output:
            log.info("LSL stream %r is PainMon's own %s output, not a signal: left out", s.name, s.own_output)
    found = [s for s in found if not s.own_output and accepts(s, predicate)]
    return sorted(found, key=lambda s: (s.subject, s.modality or "~", s.name))
