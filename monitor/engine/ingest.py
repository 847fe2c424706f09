"""The engine's side of the buffer hub: per-stream causal preprocessing and window cutting.

The hub calls listeners on the *source* thread, which must stay quick, so the listener
only queues a copy of the chunk; the engine's scheduler thread drains those queues,
runs each stream's stateful (causal) preprocessor on the new samples exactly once and
keeps the processed signal, at the model's working rate, in its own ring buffer. Cutting a
window then reads that buffer by timestamp, so modalities at different device rates line
up over the same interval.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from core.buffers import BufferHub, RingBuffer
from core.clock import now
from core.inference import ModalityWindow
from core.logthrottle import LogLimiter
from core.preprocessing import StreamPreprocessor
from core.streams import MARKERS, StreamSpec
from core.windows import cut_window, end_at_input

log = logging.getLogger(__name__)
_REJECT_LOG = LogLimiter(log)

SubjectFilter = Callable[[str], bool]


@dataclass
class _Stream:
    spec: StreamSpec
    processor: StreamPreprocessor
    values: RingBuffer
    flags: RingBuffer
    raw_times: RingBuffer
    """Timestamps of the accepted *input* samples (no values): a window ends its signal at
    the newest input sample inside it, whatever arrived after (see :meth:`StreamIngest.cut`)."""
    pending: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    rejected: int = 0


class StreamIngest:
    """Hub listener + per-stream preprocessors + processed buffers for the engine.

    ``on_chunk(spec, first_ts, last_ts, received)`` is called on the draining thread for
    every accepted chunk (the scheduler learns progress from it). Chunks of modalities the
    model does not use, of marker streams and of subjects outside ``subjects`` are ignored
    right in the listener.
    """

    def __init__(
        self,
        modalities: tuple[str, ...],
        working_rate: float = 100.0,
        window_s: float = 10.0,
        subjects: SubjectFilter | None = None,
        on_chunk: Callable[[StreamSpec, float, float, float], None] | None = None,
        wake: threading.Event | None = None,
    ):
        self.modalities = tuple(modalities)
        self.working_rate = float(working_rate)
        self.window_s = float(window_s)
        self.subjects = subjects
        self.on_chunk = on_chunk
        self.wake = wake
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._lock = threading.Lock()
        self.rejected = 0
        """Chunks refused (malformed, or the preprocessor failed on them)."""

    # --- listener (source threads) ---------------------------------------------------
    def listener(self, spec: StreamSpec, data: np.ndarray, timestamps: np.ndarray) -> None:
        """Queue a chunk for the engine thread; called by :class:`BufferHub` on push."""
        self._queue(spec, data, timestamps, history=False)

    def attach_existing(self, hub: BufferHub) -> None:
        """Feed what the hub already holds for the model's modalities (engine started late).

        Called after :meth:`listener` was registered, so chunks pushed in between are both
        in the hub's buffer and already queued: the history goes *before* them and stops at
        the first queued sample. Appended after them, it reached the preprocessor as a jump
        back in time (a clock reset: a new segment, the filters restarted, every sample of
        the overlap refused as a duplicate) for each stream of every subject.
        """
        for spec in hub.specs():
            if spec.modality == MARKERS or spec.modality not in self.modalities:
                continue
            buf = hub.buffer(spec.subject, spec.modality)
            if buf is None or len(buf) == 0:
                continue
            data, ts = buf.latest(self.window_s + 2.0)
            self._queue(spec, data, ts, history=True)

    def _queue(self, spec: StreamSpec, data: np.ndarray, timestamps: np.ndarray, *, history: bool) -> None:
        if spec.modality == MARKERS or spec.modality not in self.modalities:
            return
        if self.subjects is not None and not self.subjects(spec.subject):
            return
        # hub chunks may be views of the source's buffers: keep our own copy
        chunk = (np.array(data, copy=True), np.array(timestamps, dtype=np.float64, copy=True).reshape(-1))
        with self._lock:
            st = self._streams.get(spec.key)
            if st is None or st.spec.n_channels != spec.n_channels or st.spec.nominal_rate != spec.nominal_rate:
                st = self._new_stream(spec)
                self._streams[spec.key] = st
            if not history:
                st.pending.append(chunk)
            else:
                if st.pending and st.pending[0][1].size:
                    older = chunk[1] < st.pending[0][1][0]
                    chunk = (chunk[0][older], chunk[1][older])
                if chunk[1].size:
                    st.pending.insert(0, chunk)
        if self.wake is not None:
            self.wake.set()

    def _new_stream(self, spec: StreamSpec) -> _Stream:
        rate = spec.nominal_rate if spec.nominal_rate > 0 else self.working_rate
        proc = StreamPreprocessor(spec.modality, rate, n_channels=spec.n_channels, working_rate=self.working_rate)
        seconds = self.window_s * 2 + 10.0
        capacity = int(np.ceil(seconds * self.working_rate))
        ch = spec.n_channels
        raw = RingBuffer(1, int(np.ceil(seconds * rate)), dtype=bool)
        return _Stream(spec, proc, RingBuffer(ch, capacity), RingBuffer(ch, capacity, dtype=bool), raw)

    # --- draining (engine thread) ----------------------------------------------------
    def drain(self) -> float:
        """Preprocess every queued chunk; returns the seconds it took."""
        t0 = time.perf_counter()
        with self._lock:
            work = [(st, st.pending) for st in self._streams.values() if st.pending]
            for st, _ in work:
                st.pending = []
        received = now()
        for st, chunks in work:
            for data, ts in chunks:
                self._process(st, data, ts, received)
        return time.perf_counter() - t0

    def _process(self, st: _Stream, data: np.ndarray, ts: np.ndarray, received: float) -> None:
        if data.ndim == 1:
            data = data[:, None]
        if ts.size == 0:
            return
        try:
            out = st.processor.process(data, ts)
        except Exception as exc:  # a bad chunk must not stop the other subjects
            st.rejected += 1
            self.rejected += 1
            _REJECT_LOG.warning(st.spec.key, "rejected a chunk of %s/%s: %s", st.spec.subject, st.spec.modality, exc)
            return
        if out.timestamps.size:
            st.values.push(np.asarray(out.values, dtype=np.float32).reshape(out.timestamps.size, -1), out.timestamps)
            st.flags.push(np.asarray(out.flags, dtype=bool).reshape(out.timestamps.size, -1), out.timestamps)
        st.raw_times.push(np.zeros((ts.size, 1), bool), ts)
        if self.on_chunk is not None:
            self.on_chunk(st.spec, float(ts[0]), float(ts[-1]), received)

    # --- cutting ---------------------------------------------------------------------
    def cut(self, subject: str, t_end: float, window_s: float) -> dict[str, ModalityWindow]:
        """The processed signal of every stream of ``subject`` in the window ending at ``t_end``."""
        out: dict[str, ModalityWindow] = {}
        with self._lock:
            streams = [st for (s, _), st in self._streams.items() if s == subject]
        margin = 2.0 / self.working_rate
        for st in streams:
            values, ts = st.values.between(t_end - window_s - margin, t_end + margin)
            flags, _ = st.flags.between(t_end - window_s - margin, t_end + margin)
            values, ts, flags = self._end_at_input(st, values, ts, flags, t_end, window_s)
            w = cut_window(values, ts, flags, t_end, window_s, self.working_rate)
            out[st.spec.modality] = ModalityWindow(
                signal=np.asarray(w.signal, dtype=np.float32),
                quality=float(w.quality),
                valid=bool(w.valid),
                reason=str(getattr(w, "reason", "") or ""),
            )
        return out

    def _end_at_input(self, st: _Stream, values, ts, flags, t_end: float, window_s: float):
        """End the processed signal at the newest *input* sample before ``t_end`` and hold
        it over at most one input period (:func:`core.windows.end_at_input`, the rule
        training cuts its windows by too).

        The scheduler cuts a window once a sample within one period of its end has arrived
        (:meth:`StreamProgress.reached`); a sample *at* the end, or processed points that
        interpolate towards a later one, may or may not have arrived by then. They are
        left out, so a window's content does not depend on how quickly the engine got to
        it (a recording replayed into the engine gives the estimates seen live).
        """
        if ts.size == 0 or st.spec.nominal_rate <= 0:
            return values, ts, flags
        _, raw = st.raw_times.between(t_end - window_s, t_end - 1e-6)
        return end_at_input(values, ts, flags, raw, t_end, window_s, st.spec.nominal_rate, self.working_rate)

    def forget_subject(self, subject: str) -> None:
        with self._lock:
            for key in [k for k in self._streams if k[0] == subject]:
                del self._streams[key]
