"""When to cut a subject's next window: timestamp-driven, aligned across modalities.

Windows end on a fixed grid of the shared clock (multiples of the hop), so all modalities
of a subject, whatever their sampling rates, are cut over the same interval, and windows
of different subjects line up in time. A window is *ready* as soon as the last sample
that falls inside it has arrived on every live stream of the subject (a stream at rate f
has delivered its last in-window sample once its newest timestamp is within 1/f of the
window end), so the estimate is not held back by waiting for the next sample. A stream
that has stopped delivering (nothing received for ``stall_s``) is not waited for: the
window is cut without it and the estimate says what it lacked. The scheduler holds no
data and no threads; it is told what arrived and asked what to cut.

Live, "stopped delivering" is judged by the wall clock (time of arrival). Offline
(``data_clock=True``: fast replay, scoring a file) it is judged by the *data's* clock: a
stream has stalled when it is ``stall_s`` behind the subject's newest sample. An offline
producer holds its data back until the engine has caught up, so nothing arrives while it
waits; a wall-clock judgement would then declare every stream stalled, cut nothing, and
the replay would wait for estimates that never come (it stalled for good after ~14 s of
data on single-stream files). On the data clock the same file is always cut the same
way, however fast the machine; and its windows end on a grid from the subject's first
sample (live: the shared clock's grid, so subjects line up), so a replayed file is cut at
the same places whenever it is replayed (the replay maps the file onto ``now()`` with a
shift of whole seconds, which keeps the resampling grid on the same samples, but a file's
first sample may lie anywhere between two grid points of the hop). Offline a stream
counts as stopped only when it is both behind on the data's clock and silent by the wall
clock (a producer may push one stream's history before the next one's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class StreamProgress:
    """What the scheduler knows about one stream of a subject."""

    rate: float
    """Nominal samples/s (0 = irregular: the window end itself must be passed)."""
    first_ts: float = math.nan
    last_ts: float = math.nan
    """Newest sample timestamp (shared clock)."""
    last_received: float = math.nan
    """Shared-clock time the newest chunk arrived (to notice a stalled stream); offline
    (data clock) the newest sample's timestamp."""
    last_arrived: float = math.nan
    """Wall-clock (shared clock) time the newest chunk arrived, in either mode."""

    def reached(self, t_end: float) -> bool:
        """Has the last sample inside a window ending at ``t_end`` arrived?"""
        if math.isnan(self.last_ts):
            return False
        slack = 1.0 / self.rate if self.rate > 0 else 0.0
        # a small tolerance absorbs float jitter of timestamps on the nominal grid
        return self.last_ts >= t_end - slack - 1e-6

    def span(self) -> float:
        """Seconds from the first to the newest sample (0 before two samples)."""
        span = self.last_ts - self.first_ts
        return span if math.isfinite(span) else 0.0

    def live(self, now: float, stall_s: float) -> bool:
        return not math.isnan(self.last_received) and now - self.last_received <= stall_s


@dataclass
class Cut:
    """A decision: cut this subject's window ending at ``t_end``."""

    subject: str
    t_end: float
    waited_for: tuple[str, ...]
    """Modalities whose data reached the window end (the others are missing or stalled)."""
    skipped: int = 0
    """Older ready windows passed over to get here (real-time catch-up)."""


@dataclass
class _Subject:
    streams: dict[str, StreamProgress] = field(default_factory=dict)
    next_end: float = math.nan
    first_seen: float = math.nan
    """When the subject's first chunk arrived (its other streams may still be connecting)."""
    lead_since: float = math.nan
    first_arrived: float = math.nan
    """Wall-clock time of the subject's first chunk: its other streams get ``stall_s`` of
    wall time to connect, also offline (a producer may push one stream's history first)."""
    origin: float = 0.0
    """A point of the subject's window grid: 0 live (grid of the shared clock); offline the
    subject's first sample, so a file is cut the same way whenever it is replayed."""
    """When the first stream reached ``next_end`` (laggards are waited for ``stall_s`` from then)."""
    last_end: float = math.nan
    """End of the last window cut."""


class WindowScheduler:
    """Decides, per subject, which windows are ready to be cut.

    ``catch_up=True`` (real time): when several windows became ready at once (a burst of
    data, a stall of the caller), only the newest is cut and the others count as skipped.
    ``catch_up=False`` (offline): every window on the grid is cut, in order.

    :meth:`set_stride` lengthens the hop of every subject alike (the engine's answer to more
    load than the machine sustains, see :mod:`monitor.engine.capacity`): windows then end on
    the grid of the longer hop, still shared by all subjects.
    """

    def __init__(
        self,
        window_s: float = 10.0,
        hop_s: float = 1.0,
        stall_s: float = 2.0,
        catch_up: bool = True,
        modalities: tuple[str, ...] | None = None,
        data_clock: bool = False,
        sample_s: float = 0.0,
    ):
        if window_s <= 0 or hop_s <= 0:
            raise ValueError(f"window ({window_s}) and hop ({hop_s}) must be positive")
        if stall_s <= 0:
            raise ValueError(f"stall_s must be positive, got {stall_s}")
        self.window_s = float(window_s)
        self.hop_s = float(hop_s)
        self.stride_s = self.hop_s
        """The hop in force (``hop_s``, or longer while the engine is degraded)."""
        self.stall_s = float(stall_s)
        self.catch_up = catch_up
        self.modalities = modalities
        """Only these modalities are waited for (None: all)."""
        self.data_clock = data_clock
        """Judge stalls on the data's clock (offline) instead of by time of arrival."""
        self.sample_s = float(sample_s)
        """The working rate's period: an offline grid starts at the first sample moved back
        onto a multiple of it, so windows end where the processed signal has samples (the
        preprocessor locks its grid to the stream's samples in the same way), not between
        two of them: a window cut half a sample off the grid is an average of neighbours,
        which changed the spectrogram of a 1 Hz SpO2 stream beyond recognition."""
        self._subjects: dict[str, _Subject] = {}

    # --- input ------------------------------------------------------------------------
    def observe(
        self, subject: str, modality: str, rate: float, first_ts: float, last_ts: float, received: float
    ) -> None:
        """Record that a chunk spanning ``first_ts..last_ts`` of a stream arrived at ``received``."""
        if self.modalities is not None and modality not in self.modalities:
            return
        arrived = received
        if self.data_clock:
            received = last_ts
        subj = self._subjects.setdefault(subject, _Subject(first_seen=received, first_arrived=arrived))
        sp = subj.streams.get(modality)
        if sp is None:
            sp = subj.streams[modality] = StreamProgress(rate=rate, first_ts=first_ts)
        sp.rate = rate
        if not math.isnan(sp.last_ts) and first_ts < sp.last_ts - self.window_s:
            # the stream's clock went back (device restart, replay from the start): its
            # timeline starts afresh, and the subject's next window with it
            sp.first_ts = first_ts
            sp.last_ts = last_ts
            subj.next_end = min(subj.next_end, self._grid_ceil(first_ts + self.window_s, subj.origin))
            subj.last_end = math.nan
        elif math.isnan(sp.last_ts) or last_ts > sp.last_ts:
            sp.last_ts = last_ts
        sp.last_received = received
        sp.last_arrived = arrived
        if math.isnan(subj.next_end):
            if self.data_clock:
                subj.origin = self._on_sample_grid(first_ts)
            # first window: the first grid point that leaves a full window of data
            subj.next_end = self._grid_ceil(first_ts + self.window_s, subj.origin)

    def forget(self, subject: str) -> None:
        self._subjects.pop(subject, None)

    def subjects(self) -> list[str]:
        return sorted(self._subjects)

    def active(self, now: float) -> list[str]:
        """Subjects being served, the load the engine plans for: a live stream that has
        delivered at least a window's span of data. A subject that sent one short burst (a
        device probing, or a flood of invented ids on a shared broker: 25 new ids a second
        kept ~50 such "subjects" live) never has a window to estimate; counted, it made the
        engine lengthen every real subject's hop to 10 s and more."""
        return [name for name, subj in self._subjects.items()
                if any(sp.live(now, self.stall_s) and sp.span() >= self.window_s - 1e-6
                       for sp in subj.streams.values())]

    def set_stride(self, stride_s: float) -> None:
        """Cut every subject's windows ``stride_s`` apart from now on (at least ``hop_s``).

        Each subject's next window moves to the new grid, at least ``stride_s`` after its
        last one, so a change never makes a subject's windows come closer than either hop."""
        stride = max(float(stride_s), self.hop_s)
        if abs(stride - self.stride_s) < 1e-9:
            return
        self.stride_s = stride
        for subj in self._subjects.values():
            if not math.isnan(subj.last_end):
                subj.next_end = self._grid_ceil(subj.last_end + stride - 1e-6, subj.origin)
            elif not math.isnan(subj.next_end):
                subj.next_end = self._grid_ceil(subj.next_end, subj.origin)

    # --- decisions --------------------------------------------------------------------
    def due(self, now: float) -> list[Cut]:
        """The windows to cut now (at most one per subject in catch-up mode)."""
        cuts: list[Cut] = []
        for name, subj in self._subjects.items():
            cuts.extend(self._due_subject(name, subj, now))
        return cuts

    def _due_subject(self, name: str, subj: _Subject, now: float) -> list[Cut]:
        wall_now = now
        if self.data_clock:  # "now" is the subject's newest sample
            now = max((sp.last_received for sp in subj.streams.values()), default=math.nan)
        live = {
            m: sp for m, sp in subj.streams.items()
            if sp.live(now, self.stall_s)
            or (self.data_clock and not math.isnan(sp.last_arrived) and wall_now - sp.last_arrived <= self.stall_s)
        }
        if not live or math.isnan(subj.next_end):
            return []  # nothing is arriving: no windows, resume on the grid when data returns
        if (
            self.modalities is not None
            and len(subj.streams) < len(self.modalities)
            and (now - subj.first_seen < self.stall_s or wall_now - subj.first_arrived < self.stall_s)
        ):
            return []  # a new subject: give its other streams time to connect
        frontier = min(sp.last_ts + (1.0 / sp.rate if sp.rate > 0 else 0.0) for sp in live.values())
        newest_live = max(sp.last_ts for sp in live.values())
        # A subject that was silent (all streams stalled) resumes at its newest data: the
        # windows in the silence were never due, so they do not count as skips.
        if newest_live - subj.next_end > self.window_s + self.stall_s:
            subj.next_end = self._grid_floor(frontier, subj.origin)
        out: list[Cut] = []
        while True:
            t_end = subj.next_end
            ready = all(sp.reached(t_end) for sp in live.values())
            led = any(sp.reached(t_end) for sp in live.values())
            if led and math.isnan(subj.lead_since):
                subj.lead_since = now
            # a live stream that is still behind stall_s after another one completed the
            # window is not waited for (it is lagging, e.g. a device buffering its data)
            overdue = led and now - subj.lead_since > self.stall_s
            if not (ready or overdue):
                break
            skipped = 0
            if self.catch_up:
                newest = self._grid_floor(frontier + 1e-6, subj.origin)
                if overdue and not ready:  # the newest window the leading stream completed
                    lead = max(sp.last_ts + (1.0 / sp.rate if sp.rate > 0 else 0.0) for sp in live.values())
                    newest = max(newest, self._grid_floor(lead + 1e-6, subj.origin))
                if newest > t_end:
                    skipped = int(round((newest - t_end) / self.stride_s))
                    t_end = newest
            waited = tuple(sorted(m for m, sp in live.items() if sp.reached(t_end)))
            out.append(Cut(name, t_end, waited, skipped))
            subj.next_end = t_end + self.stride_s
            subj.last_end = t_end
            subj.lead_since = math.nan
            if self.catch_up:
                break
        return out

    # --- grid ------------------------------------------------------------------------
    def _on_sample_grid(self, t: float) -> float:
        if self.sample_s <= 0:
            return t
        return math.floor(t / self.sample_s + 1e-6) * self.sample_s

    def _grid_ceil(self, t: float, origin: float = 0.0) -> float:
        return origin + math.ceil((t - origin) / self.stride_s - 1e-9) * self.stride_s

    def _grid_floor(self, t: float, origin: float = 0.0) -> float:
        return origin + math.floor((t - origin) / self.stride_s + 1e-9) * self.stride_s
