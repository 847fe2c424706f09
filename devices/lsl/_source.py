"""The LSL source: follows matching LSL streams, feeds the hub, survives devices coming and going.

``LSLSource(stream_type="EDA")`` follows every EDA stream on the network; with no filter it follows
all streams whose modality it recognises (``core.modalities``) plus marker streams, but never
PainMon's own outputs (estimate, alarm and self-report streams of a ``serve`` or a dashboard on
the same network: :data:`core.wire.OUTPUT_STREAMS`), which are passed over unopened.
A background thread keeps discovering (every ``resolve_interval`` seconds) and checks silent
streams for presence; each stream is pulled as numpy chunks by its own worker thread (a
slow connect or clock sync of one stream never stalls another), so:

* a stream that appears later is picked up;
* a stream whose outlet vanishes is reported lost within 2 s (``StreamHealth.connected``
  False, status "lost ...");
* when the outlet returns (same source_id; or same name/type/host) data flow again into the
  same buffer; the interruption is a gap in the timestamps (``StreamHealth.gaps``), never
  zeros;
* a stream whose header declares what PainMon will not allocate for (a rate outside its
  modality's plausible range, more channels than it may have, text samples for a
  biosignal: the limits every source applies, :func:`core.modalities.check_declared`) is
  refused before an inlet is opened for it, with one log line naming it and the reason,
  and listed in :attr:`LSLSource.refused`; the other streams are followed as usual.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from functools import partial

import pylsl

from core import clock
from core.buffers import BufferHub
from core.limits import DeclarationError
from core.logthrottle import LogLimiter
from core.streams import StreamHealth, StreamSpec
from core.worker import BackgroundWorker
from devices.lsl._discovery import (
    DiscoveredStream,
    Predicate,
    accepts,
    check_declaration,
    describe,
    own_output_header,
    refused_stream,
    xpath_filter,
)
from devices.lsl._inlet import FollowedStream, StreamLost, open_inlet
from devices.source import Source, SourceError

log = logging.getLogger(__name__)

MAX_OWN_OUTPUTS_KEPT = 1024
"""Entries of :attr:`LSLSource.own_outputs` kept (it is for looking, not for deciding)."""

MAX_KNOWN_UIDS = 4096
"""uids remembered as ignored or lost, each: every restart of an outlet has a new uid, so a
sender restarting one for days must not grow them without bound (a forgotten uid that comes
back is simply judged again)."""


def _remember(known: dict, uid: str, value: object) -> None:
    """Set ``known[uid]`` as the newest entry, dropping the oldest beyond :data:`MAX_KNOWN_UIDS`."""
    known.pop(uid, None)
    known[uid] = value
    while len(known) > MAX_KNOWN_UIDS:
        del known[next(iter(known))]


STOP_TIMEOUT_S = 5.0
"""How long ``stop()`` waits for each thread."""
WORKER_WAIT_S = 0.1
"""A worker waits at most this long for data before checking whether to stop."""
PRESENCE_INTERVAL_S = 0.25
PRESENCE_TIMEOUT_S = 0.5
FORGET_AFTER_S = 3.0
"""The resolver drops outlets that stopped answering for this long."""
RETRY_DEAD_AFTER_S = 1.0
"""A uid seen lost is tried again after this long if the resolver still lists it: a frozen
or disconnected machine that comes back is followed again. (Attempts on an outlet that is
really gone fail fast and cost only its own worker thread.)"""
MAX_REFUSED = 256
"""Refused streams listed at most (the oldest go first): a sender inventing a new source id
for each outlet must not grow the list without bound."""
STARTUP_POLL_S = 0.1
STARTUP_S = 2.0


class PresenceProbe:
    """Asks the network which of some stream uids still answer, within a hard deadline.

    At most one query runs at a time; while an earlier one is still stuck in liblsl, a new
    query returns None at once ("don't know") rather than piling up threads.
    """

    def __init__(self) -> None:
        self._busy = threading.Lock()

    def query(self, uids: list[str], timeout: float) -> set[str] | None:
        if not self._busy.acquire(blocking=False):
            return None
        result: list[set[str]] = []
        done = threading.Event()

        def run() -> None:
            try:
                pred = " or ".join(f"uid='{u}'" for u in uids)
                found = pylsl.resolve_bypred(pred, minimum=len(uids), timeout=timeout)
                result.append({i.uid() for i in found})
            except Exception:
                log.exception("LSL presence query failed")
            finally:
                done.set()
                self._busy.release()

        threading.Thread(target=run, name="painmon-lsl-presence", daemon=True).start()
        done.wait(timeout + 0.25)
        return result[0] if result else set()


class LSLSource(Source):
    """Source of all LSL streams matching the filters (name / stream type / source_id / predicate).

    Restartable: after ``stop()``, ``start()`` follows the same streams again (into the
    same buffers). ``subject`` names the subject of streams that carry none in ``<desc><subject>``;
    ``modality_overrides`` maps odd stream types or names to modalities (see
    :func:`core.modalities.match_modality`). Streams of unknown modality are skipped and
    listed in :attr:`ignored`; streams declaring out-of-bounds rates, channel counts or
    formats are refused and listed in :attr:`refused` (``rate_ranges`` widens a modality's
    plausible rates, as ``--rate-range`` does for MQTT).
    """

    name = "lsl"
    restartable = True

    def __init__(
        self,
        name: str | None = None,
        *,
        stream_type: str | None = None,
        source_id: str | None = None,
        predicate: Predicate | None = None,
        subject: str | None = None,
        modality_overrides: Mapping[str, str] | None = None,
        rate_ranges: Mapping[str, tuple[float, float]] | None = None,
        resolve_interval: float = 1.0,
    ):
        super().__init__()
        if resolve_interval <= 0:
            raise SourceError(f"resolve_interval must be positive, got {resolve_interval}")
        self._xpath = xpath_filter(name, stream_type, source_id, predicate)
        self._predicate = predicate
        self._subject = subject
        self._overrides = dict(modality_overrides or {})
        self._rate_ranges = dict(rate_ranges or {})
        self.resolve_interval = resolve_interval
        self._followed: dict[str, FollowedStream] = {}
        self.ignored: dict[str, DiscoveredStream] = {}
        """Streams passed over because their modality is unknown (for the connect dialog)."""
        self.own_outputs: dict[str, str] = {}
        """uid -> name of each of PainMon's own output streams passed over (estimates, alarms,
        self-reports: :data:`core.wire.OUTPUT_STREAMS`); never opened for data."""
        self.refused: dict[str, DiscoveredStream] = {}
        """Streams refused for what they declare, by identity; ``.refused`` says why."""
        self._refusal_log = LogLimiter(log, interval=60.0, first=1, max_keys=256)
        self._dead_uids: dict[str, float] = {}
        """uid -> when it was found lost."""
        self._ignored_uids: dict[str, None] = {}
        """uids never to open again (oldest forgotten beyond :data:`MAX_KNOWN_UIDS`)."""
        self._lock = threading.Lock()
        self._discovery = BackgroundWorker(self._run, name="painmon-lsl-source")
        self._workers: dict[str, BackgroundWorker] = {}
        self._opening: set[str] = set()
        self._probe = PresenceProbe()
        self._hub: BufferHub | None = None
        self.error: BaseException | None = None

    def describe(self) -> str:
        """"LSL (filter): 3 stream(s)", with ", 1 refused" when a stream declared
        something out of bounds (the log says which and why)."""
        refused = f", {len(self.refused)} refused" if self.refused else ""
        return f"LSL ({self._xpath or 'all streams'}): {len(self._followed)} stream(s){refused}"

    # --- Source API -----------------------------------------------------------------
    def _start(self, hub: BufferHub) -> None:
        self._hub = hub
        self._discovery.start()

    def _stop(self) -> None:
        self._discovery.stop(STOP_TIMEOUT_S)  # first discovery, so no worker starts after this
        workers = list(self._workers.values())
        for worker in workers:
            worker.request_stop()
        for worker in workers:
            worker.stop(STOP_TIMEOUT_S)
        self._workers.clear()
        with self._lock:
            for f in self._followed.values():
                f.health.connected = False
                f.health.status = "stopped"

    def streams(self) -> list[StreamSpec]:
        with self._lock:
            return [f.spec for f in self._followed.values()]

    def health(self) -> list[StreamHealth]:
        now = clock.now()
        with self._lock:
            return [f.snapshot(now) for f in self._followed.values()]

    def wait_for_streams(self, n: int, timeout: float = 5.0) -> bool:
        """Block until ``n`` streams are connected (for scripts and tests)."""
        deadline = clock.now() + timeout
        while clock.now() < deadline:
            if sum(h.connected for h in self.health()) >= n:
                return True
            if self._discovery.stop_event.wait(0.02):
                break
        return False

    # --- discovery thread ------------------------------------------------------------
    def _run(self, stop: threading.Event) -> None:
        try:
            resolver = pylsl.ContinuousResolver(pred=self._xpath, forget_after=FORGET_AFTER_S)
            started = clock.now()
            next_resolve = 0.0
            while not stop.is_set():
                now = clock.now()
                if now >= next_resolve:
                    self._adopt(resolver.results(), now)
                    # look often at first so streams already there are followed at once
                    fast = now - started < STARTUP_S
                    next_resolve = now + (min(STARTUP_POLL_S, self.resolve_interval) if fast else self.resolve_interval)
                self._check_silent(clock.now())
                stop.wait(PRESENCE_INTERVAL_S)
        except BaseException as exc:  # report: the GUI shows source errors
            self.error = exc
            log.exception("LSL source stopped by an error")

    def _adopt(self, infos: list[pylsl.StreamInfo], now: float) -> None:
        """Start a worker for each new stream and each returning one (new uid, same identity).

        A uid seen lost is retried only once the resolver has heard from it again (see
        ``RETRY_DEAD_AFTER_S``); a restarted outlet has a new uid and is adopted at once.
        """
        for info in infos:
            uid = info.uid()
            with self._lock:
                if uid in self._ignored_uids or now - self._dead_uids.get(uid, -1e18) < RETRY_DEAD_AFTER_S:
                    continue
                if kind := own_output_header(info):  # PainMon's own output: never opened, never ingested
                    _remember(self._ignored_uids, uid, None)
                    self._note_own_output(uid, info.name())
                    log.info("LSL stream %r is PainMon's own %s output, not a signal; ignored", info.name(), kind)
                    continue
                identity = info.source_id() or f"{info.name()}|{info.type()}|{info.hostname()}"
                followed = self._followed.get(identity)
                if identity in self._opening or (followed is not None and followed.active):
                    continue
            try:  # before any inlet: liblsl would size its queue by what the header declares
                check_declaration(info, self._overrides, rate_ranges=self._rate_ranges)
            except DeclarationError as exc:
                self._refuse(refused_stream(info, str(exc), self._subject, self._overrides), identity)
                continue
            with self._lock:
                self._opening.add(identity)
            worker = BackgroundWorker(partial(self._follow, info, identity), name=f"painmon-lsl {info.name()}")
            self._workers[uid] = worker
            worker.start()
        for uid in [u for u, w in self._workers.items() if not w.running]:
            del self._workers[uid]

    def _note_own_output(self, uid: str, name: str) -> None:
        """Remember an output passed over (the newest :data:`MAX_OWN_OUTPUTS_KEPT`: a ward's
        subjects come and go for days, each time with a new outlet). Caller holds the lock."""
        self.own_outputs[uid] = name
        while len(self.own_outputs) > MAX_OWN_OUTPUTS_KEPT:
            del self.own_outputs[next(iter(self.own_outputs))]

    def _check_silent(self, now: float) -> None:
        """Ask the network whether silent streams' outlets still exist; report absent ones lost.

        One query for all silent streams, so many vanishing at once (a whole device) still
        costs only ``PRESENCE_TIMEOUT_S``. liblsl's resolve can overrun its timeout by
        seconds (seen with a frozen outlet), so the query runs in a helper thread with a
        hard deadline: no answer in time counts as absent.
        """
        with self._lock:
            silent = [f for f in self._followed.values()
                      if f.active and f.connected and f.silent_for(now) > f.silence_limit()]
        if not silent:
            return
        present = self._probe.query([f.uid for f in silent], PRESENCE_TIMEOUT_S)
        if present is None:  # an earlier query is still stuck (it already reported its streams)
            return
        log.debug("presence check of %d silent stream(s): %d answered in %.2f s",
                  len(silent), len(present), clock.now() - now)
        now = clock.now()
        with self._lock:
            for f in silent:
                if f.uid in present:
                    f.mark_alive(now)
                elif f.connected:
                    f.report_lost(now, "outlet no longer on the network")
                    _remember(self._dead_uids, f.uid, now)

    def _refuse(self, found: DiscoveredStream, identity: str) -> None:
        """Never open this incarnation (uid) again, list it, and say so in one line (once
        per stream a minute, however often a hostile outlet restarts)."""
        with self._lock:
            _remember(self._ignored_uids, found.uid, None)
            self.refused.pop(identity, None)
            self.refused[identity] = found
            while len(self.refused) > MAX_REFUSED:
                del self.refused[next(iter(self.refused))]
        level = logging.WARNING if found.modality is not None else logging.INFO
        self._refusal_log.log(level, identity, "LSL stream %r (type %r, from %s) refused: %s",
                              found.name, found.type, found.hostname or "?", found.refused)

    # --- one worker per stream incarnation --------------------------------------------
    def _follow(self, info: pylsl.StreamInfo, identity: str, stop: threading.Event) -> None:
        """Connect to one outlet and pull it until it is lost or the source stops."""
        uid = info.uid()
        followed: FollowedStream | None = None
        try:
            followed = self._connect(info, identity)
            if followed is None:
                return
            hub = self._hub
            assert hub is not None  # _connect asserted it: start() sets it before any worker runs
            while not stop.is_set() and followed.lost_request is None:
                followed.pull(hub, self._lock, timeout=WORKER_WAIT_S)
        except StreamLost as exc:
            if followed is not None:  # always: only pull() raises StreamLost
                with self._lock:
                    followed.report_lost(clock.now(), str(exc) or "connection lost")
        except Exception:
            log.exception("LSL worker of %s failed", info.name())
            if followed is not None:
                with self._lock:
                    followed.report_lost(clock.now(), "worker error")
        finally:
            with self._lock:
                self._opening.discard(identity)
                if followed is not None and followed.uid == uid:
                    followed.close()
                    followed.active = False
                    if not stop.is_set():
                        _remember(self._dead_uids, uid, clock.now())

    def _connect(self, info: pylsl.StreamInfo, identity: str) -> FollowedStream | None:
        """Open the inlet, read the full info, register the stream; None if not wanted."""
        assert self._hub is not None
        uid = info.uid()
        try:
            inlet, full = open_inlet(info)
        except Exception as exc:  # noqa: BLE001 - outlet gone between discovery and connect (liblsl raises several types)
            log.info("cannot open LSL stream %s: %s", info.name(), exc)
            with self._lock:
                _remember(self._dead_uids, uid, clock.now())
            return None
        found = describe(full, self._subject, self._overrides, rate_ranges=self._rate_ranges)
        if found.refused and accepts(found, self._predicate):  # labels named a stricter modality
            inlet.close_stream()
            self._refuse(found, identity)
            return None
        spec = found.spec()
        if spec is None or not accepts(found, self._predicate):
            inlet.close_stream()
            with self._lock:
                _remember(self._ignored_uids, uid, None)
                if found.own_output:  # known only from <desc> (a subject-named output, foreign source_id)
                    self._note_own_output(uid, found.name)
                    log.info("LSL stream %r is PainMon's own %s output, not a signal; ignored",
                             found.name, found.own_output)
                elif spec is None:
                    log.info("LSL stream %r (type %r) has no known modality; ignored", found.name, found.type)
                    self.ignored[found.identity] = found
            return None
        with self._lock:
            followed = self._followed.get(identity)
            if followed is None or followed.spec != spec:
                self._hub.register(spec)
                if followed is None:
                    followed = FollowedStream(found, spec)
                else:
                    followed.spec = followed.health.spec = spec
            followed.attach(inlet, found, clock.now())
            self._followed[identity] = followed
        return followed
