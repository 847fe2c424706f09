"""What the dashboard is connected to: hub, sources, engine and recorder, with their
lifecycles in one place.

The GUI thread only calls methods here that return quickly: sources start their own
threads, the engine (whose model load takes seconds) is built on a helper thread, and
the recorder writes from its own thread. Estimates reach the GUI through
:class:`monitor.gui.bridge.GuiBridge`; the recorder gets them straight from the worker
thread so a busy GUI can never delay or lose a recorded estimate.

Shutdown order is what makes "closing loses no recorded data" true: sources stop first
(no new samples), then the engine (its last estimates are delivered), then the recorder
(which writes everything it was handed and closes the file).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from core import clock
from core.buffers import BufferHub, Marker
from core.estimate import Estimate
from core.streams import StreamHealth
from devices.source import Source
from monitor.gui.bridge import GuiBridge

log = logging.getLogger(__name__)

LIVE_TOLERANCE_S = 10.0
"""Data this close to the clock counts as live (events are stamped with the clock)."""


@dataclass
class EngineConfig:
    """How to build the engine (from settings or the command line)."""

    model_path: str | None = None
    device: str = "auto"
    window_s: float | None = None
    hop_s: float = 1.0
    estimator: object | None = None
    """A ready :class:`core.estimator.Estimator` instead of loading ``model_path``
    (embedding applications, tests with a small model)."""
    threads: int | None = field(default_factory=lambda: gui_torch_threads())
    """Torch threads of the engine: all cores but one, which is left to the GUI thread
    (on a 2-core machine this halved the longest GUI stall while the model ran)."""


def gui_torch_threads() -> int:
    return max(1, (os.cpu_count() or 2) - 1)


def read_model_info(model_path: str | None) -> dict | None:
    """What the model file says about itself (the engine keeps only its name)."""
    from core.checkpoint import read_checkpoint
    from core.paths import default_model_path

    try:
        meta = read_checkpoint(model_path or default_model_path())["metadata"]
    except Exception:  # the engine loaded it, so this is only the notice's extra detail
        log.exception("cannot read the model's metadata")
        return None
    return {k: str(meta.get(k, "")) for k in ("name", "description", "trained_on", "not_clinical")}


class Session:
    """Owns the hub and everything feeding or reading it for one monitor window."""

    def __init__(self, hub: BufferHub | None = None, bridge: GuiBridge | None = None):
        self.hub = hub or BufferHub()
        self.bridge = bridge or GuiBridge()
        self.sources: list[Source] = []
        self.background: list = []
        """Helpers with ``stop()`` that feed the sources (the demo's simulated outlets)."""
        self.engine = None
        self.engine_state = "off"
        """"off", "loading", "running" or "error: ..." (shown in the status bar)."""
        self.engine_config = EngineConfig()
        self.recorder = None
        self.model_info: dict | None = None
        """Metadata of the loaded model file (name, description, trained_on, not_clinical),
        for the dashboard's notice; None for a model given as an estimator object."""
        self._engine_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.hub.add_marker_listener(self._on_marker)

    # --- sources ---------------------------------------------------------------------
    def add_source(self, source: Source) -> None:
        """Start ``source`` feeding the hub (returns once its thread is launched)."""
        source.start(self.hub)
        self.sources.append(source)
        log.info("source started: %s", source.describe())

    def add_background(self, helper) -> None:
        """Keep ``helper`` (already started) until :meth:`close`, which stops it after the
        sources that read from it."""
        self.background.append(helper)

    def stop_sources(self) -> None:
        for source in self.sources:
            try:
                source.stop()
            except Exception:  # one broken source must not keep the others running
                log.exception("stopping %s failed", source.describe())
        self.sources = []

    @property
    def replay(self):
        """The first source that supports replay control (pause/seek), or None."""
        for source in self.sources:
            if all(hasattr(source, a) for a in ("pause", "resume", "seek", "position", "duration")):
                return source
        return None

    @property
    def paused(self) -> bool:
        replay = self.replay
        return bool(replay is not None and getattr(replay, "paused", False))

    def health(self) -> list[StreamHealth]:
        out: list[StreamHealth] = []
        for source in self.sources:
            try:
                out.extend(source.health())
            except Exception:
                log.exception("health of %s failed", source.describe())
        return out

    # --- time ------------------------------------------------------------------------
    def newest_time(self) -> float:
        """Newest sample timestamp in the hub (NaN when empty): the plots' "now"."""
        newest = math.nan
        for subject in self.hub.subjects():
            for modality in self.hub.modalities(subject):
                buf = self.hub.buffer(subject, modality)
                t = buf.last_timestamp if buf is not None else math.nan
                if math.isfinite(t) and (math.isnan(newest) or t > newest):
                    newest = t
        return newest

    def event_time(self) -> float:
        """Timestamp for a user event: the clock when the data is live, else the newest
        sample (a paused or fast replay whose data is not "now")."""
        t_now = clock.now()
        newest = self.newest_time()
        if math.isnan(newest) or abs(t_now - newest) < LIVE_TOLERANCE_S:
            return t_now
        return newest

    def add_event(self, subject: str, label: str) -> Marker:
        """Store a user event in the hub (so the recorder and the trend see it)."""
        t = self.event_time()
        self.hub.push_markers(subject, [label], [t], source="user")
        return Marker(subject, t, label, "user")

    def _on_marker(self, marker: Marker) -> None:
        self.bridge.post_marker(marker)

    # --- engine ----------------------------------------------------------------------
    def start_engine(self, config: EngineConfig | None = None, wait: bool = False) -> None:
        """Build and start the engine on a helper thread (model loading takes seconds and
        must not freeze the window). Failures end up in ``engine_state`` and the bridge's
        error signal."""
        if config is not None:
            self.engine_config = config
        self.stop_engine()
        self.engine_state = "loading"
        self._engine_thread = threading.Thread(target=self._build_engine, name="painmon-engine-loader", daemon=True)
        self._engine_thread.start()
        if wait:
            self._engine_thread.join()

    def _build_engine(self) -> None:
        from monitor.engine import Engine

        cfg = self.engine_config
        try:
            engine = Engine(
                self.hub, model_path=cfg.model_path or None, device=cfg.device,
                window_s=cfg.window_s, hop_s=cfg.hop_s, estimator=cfg.estimator, threads=cfg.threads,
            )
            engine.add_callback(self._on_estimate)
            if cfg.estimator is None:
                self.model_info = read_model_info(cfg.model_path)
            with self._lock:
                if self._closed:
                    return
                self.engine = engine
                engine.start()
            self.engine_state = "running"
        except Exception as exc:  # shown to the user; the signals keep being displayed
            log.exception("engine failed to start")
            self.engine_state = f"error: {exc}"
            self.bridge.post_error(f"The pain model could not be started:\n{exc}")

    def stop_engine(self) -> None:
        if self._engine_thread is not None:
            self._engine_thread.join()
            self._engine_thread = None
        with self._lock:
            engine, self.engine = self.engine, None
        if engine is not None:
            engine.stop()
        self.engine_state = "off"

    def _on_estimate(self, est: Estimate) -> None:
        """Worker thread: record first (never lost), then hand to the GUI."""
        recorder = self.recorder
        if recorder is not None and recorder.running:
            recorder.record_estimate(est)
        self.bridge.post_estimate(est)

    # --- recording -------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self.recorder is not None and self.recorder.running

    def start_recording(self, path: str | os.PathLike) -> Path:
        """Record raw streams, markers and estimates to an XDF file from now on."""
        from devices.xdf import SessionRecorder

        if self.recording:
            raise RuntimeError(f"already recording to {self.recorder.path}")
        recorder = SessionRecorder(path, self.hub)
        recorder.start()
        self.recorder = recorder
        return recorder.path

    def stop_recording(self) -> Path | None:
        """Finish the file (everything handed over is written); returns its path."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        recorder.stop()
        return recorder.path

    # --- shutdown --------------------------------------------------------------------
    def close(self) -> None:
        """Stop sources, then the engine, then the recorder (see the module docstring)."""
        with self._lock:
            self._closed = True
        self.stop_sources()
        for helper in self.background:
            try:
                helper.stop()
            except Exception:
                log.exception("stopping %r failed", helper)
        self.background = []
        self.stop_engine()
        self.stop_recording()
