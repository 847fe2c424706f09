"""Real-time simulated wearables: several subjects, produced incrementally as time passes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from core.streams import MARKERS, StreamSpec
from core.wire import stream_source_id
from devices.simulator._physiology import (
    CHANNEL_LABELS,
    UNITS,
    SubjectGenerator,
    validate_rates,
)
from devices.simulator._profile import SubjectProfile
from devices.simulator._schedule import PainSchedule

MARKER_STREAM_SUFFIX = "PainLevel"


def subject_id(index: int, prefix: str = "sim") -> str:
    """Simulated subject ids are ``sim-1``, ``sim-2``, ... (``index`` counts from 0)."""
    return f"{prefix}-{index + 1}"


def subject_seed(seed: int, index: int) -> int:
    """The seed of subject ``index`` of a simulation seeded with ``seed``.

    Profiles and signals use this so subject 2 of ``--seed 5`` is the same person whether
    one simulates 2 or 20 subjects, and whether live or offline.
    """
    return int(seed) * 1000 + index + 1


def source_id(subject: str, modality: str) -> str:
    """The LSL ``source_id`` of a simulated stream (see :func:`core.wire.stream_source_id`)."""
    return stream_source_id(subject, modality)


@dataclass
class SimChunk:
    """A run of samples of one stream; times are seconds since the simulation started."""

    subject: str
    modality: str
    times: np.ndarray
    values: np.ndarray | None = None
    """(n,) float32 for signals; None for markers."""
    labels: list[str] = field(default_factory=list)
    """Marker strings (``"pain:high"``) for the marker stream."""

    def __len__(self) -> int:
        return int(self.times.size)

    @property
    def signal(self) -> np.ndarray:
        """``values`` of a signal chunk, typed as present; a marker chunk has none (ValueError)."""
        if self.values is None:
            raise ValueError(f"the {self.modality} chunk of {self.subject} holds markers, not values")
        return self.values


class SimulatedWearable:
    """Simulated subjects ``sim-1`` ... ``sim-N`` that produce chunks on demand.

    :meth:`advance` returns everything produced up to a given simulation time, so the
    caller decides the pace (real time for LSL/MQTT, as fast as possible for tests).
    Values equal :func:`devices.simulator.simulate` with :meth:`profile` /
    :meth:`schedule` / :func:`subject_seed` of the same subject.

    ``schedule``: one schedule for all subjects, a list with one per subject, or None for
    :meth:`PainSchedule.scripted_demo`. ``subject_prefix`` renames the subjects
    (``"ward2"`` -> ``ward2-1``, ...) so two simulators can share a network.
    """

    def __init__(
        self,
        n_subjects: int = 1,
        seed: int = 0,
        schedule: PainSchedule | Sequence[PainSchedule] | None = None,
        rates: dict[str, float] | None = None,
        *,
        profiles: Sequence[SubjectProfile] | None = None,
        subject_prefix: str = "sim",
    ):
        if n_subjects < 1:
            raise ValueError(f"need at least one subject, got {n_subjects}")
        self.seed = int(seed)
        self.rates = validate_rates(rates)
        if schedule is None or isinstance(schedule, PainSchedule):
            schedules = [schedule or PainSchedule.scripted_demo()] * n_subjects
        else:
            schedules = list(schedule)
            if len(schedules) != n_subjects:
                raise ValueError(f"{len(schedules)} schedules for {n_subjects} subjects")
        if profiles is None:
            profiles = [SubjectProfile.random(subject_seed(seed, i)) for i in range(n_subjects)]
        elif len(profiles) != n_subjects:
            raise ValueError(f"{len(profiles)} profiles for {n_subjects} subjects")
        if not subject_prefix or any(c in subject_prefix for c in " :/#+'\""):
            raise ValueError(
                f"subject prefix {subject_prefix!r} must be non-empty without spaces, ':', '/', '#', '+' or quotes"
            )
        self.subjects: list[str] = [subject_id(i, subject_prefix) for i in range(n_subjects)]
        self._profiles = dict(zip(self.subjects, profiles, strict=True))
        self._schedules = dict(zip(self.subjects, schedules, strict=True))
        self._gens = {
            s: SubjectGenerator(self._profiles[s], self._schedules[s], subject_seed(seed, i), self.rates)
            for i, s in enumerate(self.subjects)
        }
        self._pending: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {
            (s, m): [] for s in self.subjects for m in self.rates
        }
        self._elapsed = 0.0

    # --- description ----------------------------------------------------------------
    def profile(self, subject: str) -> SubjectProfile:
        return self._profiles[subject]

    def schedule(self, subject: str) -> PainSchedule:
        return self._schedules[subject]

    def subject_seed(self, subject: str) -> int:
        return subject_seed(self.seed, self.subjects.index(subject))

    @property
    def elapsed(self) -> float:
        """Simulation time up to which chunks have been handed out."""
        return self._elapsed

    def specs(self, markers: bool = True) -> list[StreamSpec]:
        """One spec per subject and modality (plus the marker stream of each subject)."""
        out = []
        for s in self.subjects:
            for m, fs in self.rates.items():
                out.append(StreamSpec(s, m, (CHANNEL_LABELS[m],), fs, UNITS[m], f"{s} {m}", source_id(s, m)))
            if markers:
                out.append(StreamSpec(s, MARKERS, ("pain",), 0.0, "", f"{s} {MARKER_STREAM_SUFFIX}",
                                      source_id(s, MARKER_STREAM_SUFFIX)))
        return out

    def level_at(self, subject: str, t: float) -> str:
        """True pain level of ``subject`` at simulation time ``t``."""
        return self._schedules[subject].level_at(t)

    # --- production -----------------------------------------------------------------
    def advance(self, until_s: float) -> list[SimChunk]:
        """All samples and markers with ``elapsed <= t < until_s`` (nothing when time has not moved)."""
        if until_s <= self._elapsed:
            return []
        chunks: list[SimChunk] = []
        for s, gen in self._gens.items():
            while gen.t_generated < until_s:
                for m, (t, v) in gen.next_block().items():
                    self._pending[(s, m)].append((t, v))
            for m in self.rates:
                chunk = self._take(s, m, until_s)
                if chunk is not None:
                    chunks.append(chunk)
            changes = self._schedules[s].changes(self._elapsed, until_s)  # includes t = 0 first
            if changes:
                chunks.append(SimChunk(s, MARKERS, np.array([c[0] for c in changes]),
                                       labels=[f"pain:{c[1]}" for c in changes]))
        self._elapsed = float(until_s)
        return chunks

    def _take(self, subject: str, modality: str, until_s: float) -> SimChunk | None:
        """Pop the pending samples before ``until_s`` of one stream."""
        pending = self._pending[(subject, modality)]
        if not pending:
            return None
        times = np.concatenate([p[0] for p in pending])
        values = np.concatenate([p[1] for p in pending])
        n = int(np.searchsorted(times, until_s, side="left"))
        pending.clear()
        if n < times.size:
            pending.append((times[n:], values[n:]))
        if n == 0:
            return None
        return SimChunk(subject, modality, times[:n], values[:n])
