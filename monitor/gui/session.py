"""What the dashboard is connected to: a :class:`monitor.pipeline.Pipeline` (hub, sources,
engine, recorder) plus what only the dashboard needs (the Qt bridge, user events, the
engine built off the GUI thread).

The GUI thread only calls methods here that return quickly: sources start their own
threads, the engine (whose model load takes seconds) is built on a helper thread, and
the recorder writes from its own thread. Estimates reach the GUI through
:class:`monitor.gui.bridge.GuiBridge`; the pipeline hands them to the recorder first,
straight from the worker thread, so a busy GUI can never delay or lose a recorded estimate.

Shutdown follows the pipeline's order, which is what makes "closing loses no recorded
data" true: sources stop first (no new samples), then the engine (its last estimates are
delivered), then the recorder (which writes everything it was handed and closes the file).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core import clock
from core.buffers import BufferHub, Marker
from core.estimate import Estimate
from core.inference import Estimator
from core.streams import StreamHealth
from core.worker import BackgroundWorker
from devices.source import Source
from monitor.gui.bridge import GuiBridge
from monitor.pipeline import Pipeline, Stoppable

log = logging.getLogger(__name__)

LIVE_TOLERANCE_S = 10.0
"""Data this close to the clock counts as live (events are stamped with the clock)."""


@dataclass
class EngineConfig:
    """How to build the engine (from settings or the command line)."""

    model_path: str | None = None
    encoder_path: str | None = None
    """Encoder weights replacing the model file's own (``--encoder``)."""
    device: str = "auto"
    precision: str = "auto"
    backend: str | None = None
    """Encoder runtime (``--backend``): torch, openvino or auto (None: torch)."""
    window_s: float | None = None
    hop_s: float = 1.0
    estimator: Estimator | None = None
    """A ready :class:`core.inference.Estimator` instead of loading ``model_path``
    (embedding applications, tests with a small model)."""
    threads: int | None = field(default_factory=lambda: gui_torch_threads())
    """Model threads of the engine (torch's, and OpenVINO's, fixed when it compiles the model):
    all cores but one, which is left to the GUI thread (on a 2-core machine this halved the
    longest GUI stall while the model ran)."""


def gui_torch_threads() -> int:
    """Torch threads of the engine under the dashboard: all cores but one, left to the GUI thread."""
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
    """Owns the pipeline and everything the dashboard adds to it for one monitor window."""

    def __init__(self, hub: BufferHub | None = None, bridge: GuiBridge | None = None):
        self.pipeline = Pipeline(hub)
        self.pipeline.start()  # no engine yet: sources start as they are added
        self.bridge = bridge or GuiBridge()
        self.pipeline.add_listener(self.bridge.post_estimate)
        # the ward: alarms on every subject, tiles for the overview tab and the web page
        from monitor.alarms import attach_alarms
        from monitor.ward import WardState

        self.alarms = attach_alarms(self.pipeline, paused=lambda: self.paused)  # a paused replay is not stale
        self.ward = WardState(alarms=self.alarms, hub=self.hub, health=self.health, now=self.data_now)
        self.pipeline.add_listener(self.ward.on_estimate)
        self.engine_state = "off"
        """"off", "loading", "running" or "error: ..." (shown in the status bar)."""
        self.engine_config = EngineConfig()
        self.model_info: dict | None = None
        """Metadata of the loaded model file (name, description, trained_on, not_clinical),
        for the dashboard's notice; None for a model given as an estimator object."""
        self._loader: BackgroundWorker | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._clean_listeners: list[Callable[[BufferHub], None]] = []
        self.source_id = 1
        """Which clean session this is (1, 2, ...): bumped by :meth:`start_clean`; the
        estimate log and its export keep estimates apart by it."""
        self.hub.add_marker_listener(self._on_marker)
        self.add_clean_listener(self.alarms.start_clean)  # a new source: no alarms or tiles of the old one
        self.add_clean_listener(self.ward.start_clean)

    # --- the pipeline's parts --------------------------------------------------------
    @property
    def hub(self) -> BufferHub:
        return self.pipeline.hub

    @property
    def sources(self) -> list[Source]:
        return self.pipeline.sources

    @property
    def engine(self) -> Any:
        """The running :class:`monitor.engine.Engine`, or None."""
        return self.pipeline.engine

    @property
    def recorder(self) -> Any:
        return self.pipeline.recorder

    # --- sources ---------------------------------------------------------------------
    def add_source(self, source: Source) -> None:
        """Start ``source`` feeding the hub (returns once its thread is launched)."""
        self.pipeline.add_source(source)

    def add_background(self, helper: Stoppable) -> None:
        """Keep ``helper`` (already started) until :meth:`close`, which stops it after the
        sources that read from it."""
        self.pipeline.add_helper(helper)

    def stop_sources(self) -> None:
        self.pipeline.stop_sources()

    def source_label(self) -> str:
        """What feeds the session now, in one line ("no source" when nothing does)."""
        return ", ".join(s.describe() for s in self.sources) or "no source"

    def add_clean_listener(self, fn: Callable[[BufferHub], None]) -> None:
        """Call ``fn(new_hub)`` (GUI thread) whenever :meth:`start_clean` begins a new
        session, so whatever else keeps per-subject state (alarms, a ward view) starts
        afresh on the new hub too."""
        self._clean_listeners.append(fn)

    def start_clean(self, sources: list[Source]) -> Path | None:
        """Replace the current sources by ``sources`` on a fresh session.

        A recording opened over a live session, a seek or a switch between live and
        recorded data must not be spliced onto what came before: the old sources stop,
        the buffers, windows, trends and baselines start empty (a new hub and a new
        engine on the same loaded model), and whatever the old sources and engine had
        posted but the GUI had not received yet is dropped (:meth:`GuiBridge.new_generation`).
        A running recording is finished first (it belongs to the old session); its path
        is returned. Called on the GUI thread; returns quickly (no model is loaded).
        """
        self.pipeline.stop_sources()
        saved = self.pipeline.stop_recording() if self.recording else None
        with self._lock:
            old = self.pipeline.engine
            self.pipeline.stop_engine()
            if old is not None:  # what the model keeps per subject (baselines) goes too
                for subject in {*old.scheduler.subjects(), *self.hub.subjects()}:
                    old.forget(subject)
            self.hub.remove_marker_listener(self._on_marker)
            self.pipeline.hub = BufferHub(self.hub.seconds)
            self.hub.add_marker_listener(self._on_marker)
            self.bridge.new_generation()
            self.source_id += 1
            if old is not None:
                engine = type(old)(self.hub, old.estimator, window_s=old.window_s, hop_s=old.hop_s,
                                   realtime=old.realtime, threads=old.threads)
                self.pipeline.set_engine(engine, start=True, warmup=False)
        for fn in self._clean_listeners:
            try:
                fn(self.hub)
            except Exception:  # one stale view must not keep the new session from starting
                log.exception("clean-session listener %r failed", fn)
        for source in sources:
            self.pipeline.add_source(source)
        return saved

    @property
    def replay(self) -> Any:
        """The first source that supports replay control (pause/seek), or None."""
        return self.pipeline.playback()

    @property
    def paused(self) -> bool:
        replay = self.replay
        return bool(replay is not None and replay.paused)

    def health(self) -> list[StreamHealth]:
        """Every stream's health; a replay that reached its end reports its streams as they
        were ("end of file"), not as lost sensors."""
        health = self.pipeline.stream_health()
        replay = self.replay
        if replay is not None and replay.finished.is_set():
            health = [dataclasses.replace(h, connected=True, status="end of file") for h in health]
        return health

    def data_now(self) -> float:
        """"Now" for judging sample ages: the clock while data are live, the newest sample
        while a replay is paused or has ended (its data stopped on purpose)."""
        replay = self.replay
        if replay is not None and (replay.paused or replay.finished.is_set()):
            newest = self.newest_time()
            if math.isfinite(newest):
                return newest
        return clock.now()

    # --- time ------------------------------------------------------------------------
    def newest_time(self) -> float:
        """Newest sample timestamp in the hub (NaN when empty): the plots' "now"."""
        return self.pipeline.newest_time()

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
        self._loader = BackgroundWorker(lambda _stop: self._build_engine(), name="painmon-engine-loader")
        self._loader.start()
        if wait:
            self._loader.join()

    def _build_engine(self) -> None:
        from monitor.engine import Engine, ModelOptions

        cfg = self.engine_config
        try:
            estimator = cfg.estimator
            if estimator is None:
                options = ModelOptions(model_path=cfg.model_path or None, encoder_path=cfg.encoder_path or None,
                                       device=cfg.device, precision=cfg.precision, backend=cfg.backend,
                                       threads=cfg.threads)
                estimator = options.load().estimator
            if cfg.estimator is None:
                self.model_info = read_model_info(cfg.model_path)
            with self._lock:  # on the hub of now: start_clean may have replaced it meanwhile
                if self._closed:
                    return
                engine = Engine(self.hub, estimator, window_s=cfg.window_s, hop_s=cfg.hop_s, threads=cfg.threads)
                self.pipeline.set_engine(engine, start=True)
            self.engine_state = "running"
        except Exception as exc:  # shown to the user (a dialog); one line in the log, no traceback
            log.info("engine failed to start: %s", " ".join(str(exc).split()))  # the window reports it
            self.engine_state = f"error: {exc}"
            self.bridge.post_error(f"The pain model could not be started:\n{exc}")

    def stop_engine(self) -> None:
        if self._loader is not None:
            self._loader.join()
            self._loader = None
        self.pipeline.stop_engine()
        self.engine_state = "off"

    def _on_estimate(self, est: Estimate) -> None:
        """What the engine calls on its worker thread: record first (never lost), then
        hand to the GUI (see :meth:`monitor.pipeline.Pipeline.deliver`)."""
        self.pipeline.deliver(est)

    # --- recording -------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self.pipeline.recording

    def start_recording(self, path: str | os.PathLike, *, on_error: Callable[[str], None] | None = None) -> Path:
        """Record raw streams, markers and estimates to an XDF file from now on
        (``on_error``: see :meth:`monitor.pipeline.Pipeline.start_recording`)."""
        return self.pipeline.start_recording(path, on_error=on_error)

    def stop_recording(self) -> Path | None:
        """Finish the file (everything handed over is written); returns its path."""
        return self.pipeline.stop_recording()

    # --- shutdown --------------------------------------------------------------------
    def close(self) -> None:
        """Stop sources, then the engine, then the recorder (see the module docstring)."""
        with self._lock:
            self._closed = True
        self.pipeline.stop_sources()
        if self._loader is not None:  # an engine still loading is dropped when it is done
            self._loader.join()
            self._loader = None
        self.pipeline.stop()
        self.engine_state = "off"
