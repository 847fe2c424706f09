"""The LSL source: follows matching LSL streams, feeds the hub, survives devices coming and going.

``LSLSource(type="EDA")`` follows every EDA stream on the network; with no filter it follows
all streams whose modality it recognises (``core.modalities``) plus marker streams.
A background thread keeps discovering (every ``resolve_interval`` seconds), pulls all open
inlets every ~20 ms as numpy chunks, and checks silent streams for presence, so:

* a stream that appears later is picked up;
* a stream whose outlet vanishes is reported lost within 2 s (``StreamHealth.connected``
  False, status "lost ...");
* when the outlet returns (same source_id; or same name/type/host) data flow again into the
  same buffer; the interruption is a gap in the timestamps (``StreamHealth.gaps``), never
  zeros.
"""

from __future__ import annotations

import logging
import threading
from typing import Mapping

import pylsl

from core import clock
from core.buffers import BufferHub
from core.streams import StreamHealth, StreamSpec
from devices.lsl_discovery import DiscoveredStream, Predicate, accepts, describe, discover, xpath_filter
from devices.lsl_inlet import FollowedStream, StreamLost, open_inlet
from devices.source import Source, SourceError

__all__ = ["LSLSource", "DiscoveredStream", "discover"]

log = logging.getLogger(__name__)

PULL_INTERVAL_S = 0.02
PRESENCE_TIMEOUT_S = 0.5
FORGET_AFTER_S = 3.0
"""The resolver drops outlets that stopped answering for this long."""
RETRY_DEAD_AFTER_S = FORGET_AFTER_S + 1.0
"""A uid seen lost is retried only if the resolver still lists it this long after: then it
has answered again since (a frozen or disconnected machine that came back)."""
STARTUP_POLL_S = 0.1
STARTUP_S = 2.0


class LSLSource(Source):
    """Source of all LSL streams matching the filters (name / type / source_id / predicate).

    ``subject`` names the subject of streams that carry none in ``<desc><subject>``;
    ``modality_overrides`` maps odd stream types or names to modalities (see
    :func:`core.modalities.match_modality`). Streams of unknown modality are skipped and
    listed in :attr:`ignored`.
    """

    name = "lsl"

    def __init__(
        self,
        name: str | None = None,
        type: str | None = None,
        source_id: str | None = None,
        predicate: Predicate | None = None,
        subject: str | None = None,
        modality_overrides: Mapping[str, str] | None = None,
        resolve_interval: float = 1.0,
    ):
        if resolve_interval <= 0:
            raise SourceError(f"resolve_interval must be positive, got {resolve_interval}")
        self._xpath = xpath_filter(name, type, source_id, predicate)
        self._predicate = predicate
        self._subject = subject
        self._overrides = dict(modality_overrides or {})
        self.resolve_interval = resolve_interval
        self._followed: dict[str, FollowedStream] = {}
        self.ignored: dict[str, DiscoveredStream] = {}
        """Streams passed over because their modality is unknown (for the connect dialog)."""
        self._dead_uids: dict[str, float] = {}
        """uid -> when it was found lost."""
        self._ignored_uids: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._hub: BufferHub | None = None
        self.error: BaseException | None = None

    def describe(self) -> str:
        return f"LSL ({self._xpath or 'all streams'}): {len(self._followed)} stream(s)"

    # --- Source API -----------------------------------------------------------------
    def start(self, hub: BufferHub) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._hub = hub
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="painmon-lsl-source", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive():
                log.warning("LSL source thread did not stop within 5 s")
            self._thread = None
        with self._lock:
            for f in self._followed.values():
                f.mark_lost(clock.now(), "source stopped")
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
            if self._stop.wait(0.02):
                break
        return False

    # --- worker ---------------------------------------------------------------------
    def _run(self) -> None:
        try:
            resolver = pylsl.ContinuousResolver(pred=self._xpath, forget_after=FORGET_AFTER_S)
            started = clock.now()
            next_resolve = 0.0
            next_presence = 0.0
            while not self._stop.is_set():
                now = clock.now()
                if now >= next_resolve:
                    self._adopt(resolver.results(), now)
                    # look often at first so streams already there are followed at once
                    fast = now - started < STARTUP_S
                    next_resolve = now + (min(STARTUP_POLL_S, self.resolve_interval) if fast else self.resolve_interval)
                self._pull_all(now)
                if now >= next_presence:
                    self._check_silent(clock.now())
                    next_presence = clock.now() + 0.25
                self._stop.wait(PULL_INTERVAL_S)
        except BaseException as exc:  # report: the GUI shows source errors
            self.error = exc
            log.exception("LSL source stopped by an error")

    def _adopt(self, infos: list[pylsl.StreamInfo], now: float) -> None:
        """Open inlets for new streams and for returning streams (new uid, same identity).

        A uid seen lost is never retried (the resolver remembers vanished outlets for a
        few seconds); a restarted outlet has a new uid and is adopted under its identity.
        """
        assert self._hub is not None
        for info in infos:
            uid = info.uid()
            if uid in self._ignored_uids or now - self._dead_uids.get(uid, -1e18) < RETRY_DEAD_AFTER_S:
                continue
            identity = info.source_id() or f"{info.name()}|{info.type()}|{info.hostname()}"
            followed = self._followed.get(identity)
            if followed is not None and followed.connected:
                continue
            try:
                inlet, full = open_inlet(info)
            except Exception as exc:  # outlet gone between discovery and connect
                log.info("cannot open LSL stream %s: %s", info.name(), exc)
                self._dead_uids[uid] = now
                continue
            found = describe(full, self._subject, self._overrides)
            spec = found.spec()
            if spec is None or not accepts(found, self._predicate):
                inlet.close_stream()
                self._ignored_uids.add(uid)
                if spec is None:
                    log.info("LSL stream %r (type %r) has no known modality; ignored", found.name, found.type)
                    self.ignored[found.identity] = found
                continue
            with self._lock:
                if followed is None or followed.spec != spec:
                    self._hub.register(spec)
                    if followed is None:
                        followed = FollowedStream(found, spec)
                    else:
                        followed.spec = followed.health.spec = spec
                followed.attach(inlet, found, clock.now())
                self._followed[found.identity] = followed

    def _pull_all(self, now: float) -> None:
        assert self._hub is not None
        for f in list(self._followed.values()):
            if not f.connected:
                continue
            with self._lock:  # health() snapshots must not see a half-updated record
                try:
                    f.pull(self._hub, now)
                except StreamLost as exc:
                    f.mark_lost(now, str(exc) or "connection lost")
                    self._dead_uids[f.uid] = now

    def _check_silent(self, now: float) -> None:
        """Ask the network whether silent streams' outlets still exist; mark absent ones lost.

        One resolve for all silent streams, so many vanishing at once (a whole device)
        still costs only ``PRESENCE_TIMEOUT_S``.
        """
        silent = [f for f in self._followed.values() if f.connected and f.silent_for(now) > f.silence_limit()]
        if not silent:
            return
        pred = " or ".join(f"uid='{f.uid}'" for f in silent)
        present = {i.uid() for i in pylsl.resolve_bypred(pred, minimum=len(silent), timeout=PRESENCE_TIMEOUT_S)}
        now = clock.now()
        with self._lock:
            for f in silent:
                if f.uid in present:
                    f.mark_alive(now)
                else:
                    f.mark_lost(now, "outlet no longer on the network")
                    self._dead_uids[f.uid] = now
