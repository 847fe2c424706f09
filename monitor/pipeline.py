"""One assembly of PainMon at run time: sources -> hub -> engine -> outputs, plus a recorder.

The dashboard (:class:`monitor.gui.session.Session`), the headless service (``painmon
serve``), headless replay (``painmon replay --headless``) and the real-time benchmark all
run the same thing; they differ in which sources feed the hub and where estimates go. A
:class:`Pipeline` holds those parts and gives them one lifecycle:

* **start** (:meth:`Pipeline.start`): the engine first, so it is listening before the
  first sample arrives, then the sources added so far; a source added to a started
  pipeline starts at once;
* **stop** (:meth:`Pipeline.stop`): sources first (no new samples), then the helpers that
  feed them (a simulator's outlets), then the engine (the batch it is computing is
  finished and delivered), then the outputs and last the recorder, which writes everything
  it was handed and closes the file. That order is what makes "stopping loses no recorded
  estimate" true;
* **health** (:meth:`Pipeline.health`): one snapshot of streams, engine and recording;
* **release**: when a source lets a subject go (:meth:`core.buffers.BufferHub.remove`:
  idle, or evicted by the source's limits) the engine forgets it and every output with a
  ``forget(subject)`` method releases what it holds for it (LSL outlets).

Every estimate the engine produces goes, on the engine's worker thread, to the recorder
first (a busy consumer can never delay or lose a recorded estimate), then to each output
(:meth:`Pipeline.add_output`) and each listener (:meth:`Pipeline.add_listener`), in the
order they were added. A failing output is logged and does not stop the others.

The pipeline loads nothing: the engine is built by the caller from a ready estimator
(:func:`monitor.engine.load_estimator`), so building a pipeline is quick and cannot fail on
a model file.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from core.buffers import BufferHub
from core.errors import PainMonError
from core.estimate import Estimate
from core.streams import SELF_REPORT, StreamHealth
from devices.source import PlaybackControls, Source
from monitor.engine import Engine, EngineStats
from monitor.outputs import forget_subject

log = logging.getLogger(__name__)

EstimateCallback = Callable[[Estimate], None]


class PipelineError(PainMonError, RuntimeError):
    """A pipeline asked to do something its state does not allow (e.g. record twice)."""


@runtime_checkable
class EstimateOutput(Protocol):
    """Where estimates go: called with each estimate (on the engine's worker thread, so it
    must be quick), closed when the pipeline stops (e.g. :mod:`monitor.outputs`)."""

    def __call__(self, est: Estimate) -> None: ...

    def close(self) -> None: ...


class Stoppable(Protocol):
    """A helper that runs on its own and only needs stopping (a simulator's outlets)."""

    def stop(self) -> None: ...


@dataclass(frozen=True)
class PipelineHealth:
    """A snapshot of a pipeline (safe to hand to the GUI or a log line)."""

    streams: tuple[StreamHealth, ...]
    engine: EngineStats | None
    """None when no engine runs (no model, or not started yet)."""
    recording: Path | None
    """The file being recorded, if any."""
    recording_error: str | None = None
    """Why the last recording stopped by itself (a full disk), if it did."""

    @property
    def connected(self) -> int:
        """Streams currently delivering."""
        return sum(1 for h in self.streams if h.connected)


class Pipeline:
    """Hub, sources, engine, estimate outputs and recorder with one ordered lifecycle.

    Args:
        hub: the buffer hub the sources feed (default: a new one).
    """

    def __init__(self, hub: BufferHub | None = None) -> None:
        self.hub = hub if hub is not None else BufferHub()
        self.hub.add_removal_listener(self._on_removed)
        self.sources: list[Source] = []
        self.helpers: list[Stoppable] = []
        self.outputs: list[EstimateCallback] = []
        self.recorder: Any = None
        """The running :class:`devices.xdf.SessionRecorder`, if any."""
        self._engine: Engine | None = None
        self._listeners: list[EstimateCallback] = []
        self._pending: list[Source] = []
        self._started = False
        self._lock = threading.Lock()

    # --- assembly --------------------------------------------------------------------
    @property
    def engine(self) -> Engine | None:
        return self._engine

    def set_engine(self, engine: Engine | None, *, start: bool | None = None, warmup: bool = True) -> None:
        """Use ``engine`` (built on :attr:`hub`) from now on; a previous engine is stopped.

        ``start``: start it now (default: when the pipeline has been started)."""
        if engine is not None and engine.hub is not self.hub:
            raise PipelineError("the engine reads another hub than this pipeline's")
        self.stop_engine()
        if engine is None:
            return
        engine.add_callback(self.deliver)
        with self._lock:
            self._engine = engine
        if start if start is not None else self._started:
            engine.start(warmup=warmup)

    def add_source(self, source: Source) -> None:
        """Add a source; it starts feeding the hub now if the pipeline runs, else at :meth:`start`."""
        if self._started:
            source.start(self.hub)
            log.info("source started: %s", source.describe())
        else:
            self._pending.append(source)
        self.sources.append(source)

    def add_helper(self, helper: Stoppable) -> None:
        """Keep ``helper`` (already running) until :meth:`stop`, which stops it right after
        the sources that read from it."""
        self.helpers.append(helper)

    def add_output(self, output: EstimateCallback) -> None:
        """Send every estimate to ``output`` (:class:`EstimateOutput`: its ``close()``, if
        it has one, runs when the pipeline stops, after the engine)."""
        self.outputs.append(output)

    def add_listener(self, fn: EstimateCallback) -> None:
        """Call ``fn(estimate)`` for every estimate, after the recorder and the outputs
        (the dashboard's bridge, a printer). Nothing to close."""
        self._listeners.append(fn)

    # --- lifecycle -------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return self._started

    def start(self, *, warmup: bool = True) -> None:
        """Start the engine (if any), then the sources added so far. Twice does nothing."""
        if self._started:
            return
        self._started = True
        engine = self._engine
        if engine is not None:
            engine.start(warmup=warmup)
        pending, self._pending = self._pending, []
        for source in pending:
            source.start(self.hub)
            log.info("source started: %s", source.describe())

    def stop_sources(self) -> None:
        """Stop and drop every source (the helpers keep running: see :meth:`stop_helpers`)."""
        for source in self.sources:
            try:
                source.stop()
            except Exception:  # one broken source must not keep the others running
                log.exception("stopping %s failed", source.describe())
        self.sources = []
        self._pending = []

    def stop_helpers(self) -> None:
        """Stop and drop the helpers (after the sources that read from them)."""
        for helper in self.helpers:
            try:
                helper.stop()
            except Exception:
                log.exception("stopping %r failed", helper)
        self.helpers = []

    def stop_engine(self) -> None:
        """Stop the engine (its last batch is delivered first) and drop it."""
        with self._lock:
            engine, self._engine = self._engine, None
        if engine is not None:
            engine.stop()

    def close_outputs(self) -> None:
        for output in self.outputs:
            close = getattr(output, "close", None)
            if close is None:
                continue
            try:
                close()
            except Exception:
                log.exception("closing output %r failed", output)
        self.outputs = []

    def stop(self) -> None:
        """Sources, helpers, engine, outputs, recorder, in that order (module docstring).
        Safe to call twice and before :meth:`start`."""
        self.stop_sources()
        self.stop_helpers()
        self.stop_engine()
        self.close_outputs()
        self.stop_recording()
        self._started = False

    def __enter__(self) -> Pipeline:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_removed(self, subject: str, modality: str | None) -> None:
        """A source let a subject go (idle, or evicted): the engine forgets it and outputs
        release what they hold for it (an LSL outlet: file descriptors and threads)."""
        if modality is not None:
            return
        engine = self._engine
        if engine is not None:
            engine.forget(subject)
        forget_subject(self.outputs, subject)

    # --- estimates -------------------------------------------------------------------
    def deliver(self, est: Estimate) -> None:
        """Hand ``est`` on as the engine does (on its worker thread): recorder first (never
        lost), then outputs, then listeners."""
        recorder = self.recorder
        if recorder is not None and recorder.running:
            recorder.record_estimate(est)
        for fn in (*self.outputs, *self._listeners):
            try:
                fn(est)
            except Exception:
                log.exception("estimate output %r failed", fn)

    # --- recording -------------------------------------------------------------------
    @property
    def recording(self) -> bool:
        return self.recorder is not None and self.recorder.running

    @property
    def recording_error(self) -> str | None:
        """Why the last recording stopped by itself (a full disk), in one line; None while
        it runs, after a normal stop, or when nothing was recorded."""
        recorder = self.recorder
        return recorder.error if recorder is not None else None

    def start_recording(self, path: str | os.PathLike, *, on_error: Callable[[str], None] | None = None) -> Path:
        """Record raw streams, markers and estimates to an XDF file from now on.

        ``on_error(message)`` is called once, on the recorder's thread, if writing fails
        (a full disk): the recording has then stopped, what was flushed is kept, and
        :attr:`recording_error` holds the same message."""
        from devices.xdf import SessionRecorder

        if self.recording:
            raise PipelineError(f"already recording to {self.recorder.path}")
        recorder = SessionRecorder(path, self.hub, on_error=on_error)
        recorder.start()
        self.recorder = recorder
        return Path(recorder.path)

    def stop_recording(self) -> Path | None:
        """Finish the file (everything handed over is written); returns its path."""
        recorder, self.recorder = self.recorder, None
        if recorder is None:
            return None
        recorder.stop()
        return Path(recorder.path)

    # --- status ----------------------------------------------------------------------
    def stream_health(self) -> list[StreamHealth]:
        out: list[StreamHealth] = []
        for source in self.sources:
            try:
                out.extend(source.health())
            except Exception:
                log.exception("health of %s failed", source.describe())
        return out

    def health(self) -> PipelineHealth:
        engine = self._engine
        return PipelineHealth(
            streams=tuple(self.stream_health()),
            engine=engine.stats() if engine is not None else None,
            recording=Path(self.recorder.path) if self.recording else None,
            recording_error=self.recording_error,
        )

    def playback(self) -> PlaybackControls | None:
        """The first source with playback controls (pause, resume, seek, position,
        duration), or None."""
        for source in self.sources:
            if isinstance(source, PlaybackControls):
                return source
        return None

    def newest_time(self) -> float:
        """Newest sample timestamp in the hub (NaN when empty): the plots' "now". Signals
        only: a self-report keeps being sampled on the live clock while a replay pauses."""
        newest = math.nan
        for subject in self.hub.subjects():
            for modality in self.hub.modalities(subject):
                if modality == SELF_REPORT:
                    continue
                buf = self.hub.buffer(subject, modality)
                t = buf.last_timestamp if buf is not None else math.nan
                if math.isfinite(t) and (math.isnan(newest) or t > newest):
                    newest = t
        return newest


