"""Streaming preprocessing of one stream: clean, resample to the working rate, filter.

One :class:`StreamPreprocessor` per (subject, modality) stream is fed the chunks a source
delivers, in order. Everything that depends on the past — filter states (``sosfilt`` with
``zi``), the resampler's position on the output grid, the last sample used for
interpolation, flat-line runs — is kept between calls, so the output does not depend on
how the stream was chunked: feeding a recording in one call or in random pieces gives the
same samples (the tests check this).

Order of operations, per chunk:

1. timestamps: non-finite or non-increasing rows are rejected (counted, logged); a jump
   backwards by more than the gap threshold is a clock reset and starts a new segment;
2. values: NaN/inf and samples outside the plausible range are bad. A row bad in every
   channel is dropped (its time becomes a gap); a partly bad row is filled from the last
   good value of the bad channel. Runs of identical raw values longer than the chain's
   ``flat_max_s`` (a stuck or disconnected sensor) are flagged, and so are plateaus at the
   stream's running maximum/minimum lasting ``clip_min_s`` (clipping);
3. segments: consecutive samples further apart than the gap threshold are not bridged;
   each segment restarts the filters from the steady state of its first value (no
   start-up transient);
4. anti-aliasing: a 4th-order Butterworth low-pass at 40 % of the working rate, run at the
   input rate, only when the input is faster than the working rate;
5. resampling: linear interpolation onto the absolute grid ``k / working_rate`` of the
   shared clock (so all modalities of all subjects share sample times), *phase-locked* for
   a stream whose rate divides the working rate (1, 4, 25, 50 Hz ... at 100 Hz): each
   segment is first moved back by where its samples lie after a grid point (less than one
   working-rate period, 10 ms at 100 Hz), so it is sampled exactly at its own samples
   wherever the clock puts them. Without
   this the representations depended on the clock's phase: a 1 Hz SpO2 stream 4-6 ms off
   the grid made the spectrogram's near-zero bins (floored 160 dB down) differ entirely from
   the on-grid training recordings (``painmon bench clock_phase``: index 52 / 32 / 96 on the
   grid, 9 / 7 / 29 shifted by 5 ms). The cost: a stream is placed up to one period early,
   so modalities line up to within 10 ms rather than exactly. A grid point
   between two input samples further apart than 1.75 input periods lies in a short gap:
   it is interpolated and flagged;
6. the modality's chain (:mod:`core.preprocessing.chains`) at the working rate, then the
   chain's clipping.

Filter group delay is not compensated: output timestamps are those of the grid, and the
filtered waveform lags by the filter's delay (a few hundred ms for the RESP band-pass).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
from scipy import signal as sps

from core.logthrottle import LogLimiter
from core.modalities import get_modality
from core.preprocessing.chains import ChainSpec, chain_for

log = logging.getLogger(__name__)

MISSING_PERIODS = 1.75
"""Input samples further apart than this many nominal periods have samples missing
between them; grid points there are flagged as interpolated."""

ANTIALIAS_FRACTION = 0.4
"""Anti-alias cutoff as a fraction of the working rate (40 Hz at 100 Hz)."""

MAX_BRIDGE_S = 10.0
"""No gap longer than this is ever interpolated, whatever rate a stream declares: a
bridged gap is resampled onto the working grid, so a declared rate of 1e-6 Hz would
otherwise make one four-sample chunk cost 10^8 output samples."""

GRID_TOL = 1e-6
"""Tolerance, in working-rate samples, of "on a grid point" (10 ns at 100 Hz): a clock of
10^6 s and more carries rounding of that order into ``t * rate``."""
WARN_INTERVAL_S = 10.0
"""A misbehaving stream logs a warning at most this often (the rest go to DEBUG); the
counters in :class:`PreprocessStats` keep the full tally."""


@dataclass
class Processed:
    """Output of one :meth:`StreamPreprocessor.process` call, at the working rate."""

    values: np.ndarray
    """(m, channels) float32."""
    timestamps: np.ndarray
    """(m,) float64, on the input's clock, on the grid ``k / working_rate``."""
    flags: np.ndarray
    """(m, channels) bool; True = interpolated over missing/bad input, artefact, flat."""

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    @classmethod
    def empty(cls, n_channels: int) -> Processed:
        return cls(
            np.zeros((0, n_channels), np.float32),
            np.zeros(0, np.float64),
            np.zeros((0, n_channels), bool),
        )

    @classmethod
    def concat(cls, parts: list[Processed], n_channels: int) -> Processed:
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(n_channels)
        if len(parts) == 1:
            return parts[0]
        return cls(
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.timestamps for p in parts]),
            np.concatenate([p.flags for p in parts]),
        )


@dataclass
class PreprocessStats:
    """Counters of what the preprocessor had to repair or refuse (for stream health)."""

    samples_in: int = 0
    samples_out: int = 0
    rejected_timestamps: int = 0
    """Rows refused because their timestamp was NaN/inf or not after the previous one."""
    bad_values: int = 0
    """Channel values that were NaN/inf or outside the plausible range."""
    dropped_rows: int = 0
    """Rows bad in every channel (their time became a gap)."""
    flat_samples: int = 0
    clipped_samples: int = 0
    """Samples held at the stream's running maximum/minimum (a saturated sensor/ADC)."""
    bridged_gaps: int = 0
    """Intervals with missing samples that were interpolated (and flagged)."""
    segments: int = 0
    """Contiguous stretches; more than one means long gaps or clock resets."""
    clock_resets: int = 0


class StreamPreprocessor:
    """Stateful clean/resample/filter of one stream; see the module docstring."""

    def __init__(
        self,
        modality: str,
        fs_in: float,
        n_channels: int = 1,
        working_rate: float | None = None,
        chain: ChainSpec | None = None,
    ):
        mod = get_modality(modality)
        if not (math.isfinite(fs_in) and fs_in > 0):
            raise ValueError(f"input rate must be a positive number of Hz, got {fs_in!r}")
        if n_channels < 1:
            raise ValueError(f"n_channels must be at least 1, got {n_channels}")
        rate = float(working_rate if working_rate is not None else mod.working_rate)
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"working rate must be positive, got {working_rate!r}")
        self.modality = mod.name
        self.fs_in = float(fs_in)
        self.n_channels = int(n_channels)
        self.rate = rate
        self.chain = chain if chain is not None else chain_for(mod.name)
        self.valid_range = self.chain.valid_range or mod.value_range
        self.max_gap = min(max(self.chain.max_gap_s, 2.5 / self.fs_in), MAX_BRIDGE_S)
        self.missing_dt = MISSING_PERIODS / self.fs_in
        self._aa_sos = (
            sps.butter(4, ANTIALIAS_FRACTION * rate, fs=self.fs_in, output="sos")
            if self.fs_in > rate
            else None
        )
        self._chain_sos = self.chain.design(rate)
        self._aa_unit = sps.sosfilt_zi(self._aa_sos) if self._aa_sos is not None else None
        self._chain_unit = sps.sosfilt_zi(self._chain_sos) if self._chain_sos is not None else None
        self.stats = PreprocessStats()
        self._limiter = LogLimiter(log, interval=WARN_INTERVAL_S, first=1, max_keys=4)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Forget the past (a new recording); counters in :attr:`stats` are kept."""
        ch = self.n_channels
        self._last_t = -math.inf  # last accepted timestamp (incl. dropped rows)
        self._last_kept_t: float | None = None  # last row that reached the resampler
        self._hold = np.full(ch, np.nan)
        self._flat_val = np.full(ch, np.nan)
        self._flat_start = np.full(ch, np.nan)
        self._run_max = np.full(ch, -np.inf)
        self._run_min = np.full(ch, np.inf)
        self._prev: tuple[float, np.ndarray, np.ndarray] | None = None
        self._next_k = 0
        self._phase = 0.0  # seconds the current segment's samples lie after the grid
        self._aa_zi: np.ndarray | None = None
        self._chain_zi: np.ndarray | None = None

    # ------------------------------------------------------------------ API
    def process(self, data: np.ndarray, timestamps: np.ndarray) -> Processed:
        """Consume one chunk (n, channels) with its (n,) timestamps; return new output.

        Output covers grid points up to the newest input timestamp (linear interpolation
        needs the sample after a grid point), so latency is at most one input period
        plus the filters' delay.
        """
        try:
            data = np.asarray(data, dtype=np.float64)
            ts = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{self.modality}: samples and timestamps must be numeric ({exc})") from exc
        if data.ndim == 1 and self.n_channels == 1:
            data = data[:, None]
        if data.ndim != 2 or data.shape[1] != self.n_channels:
            raise ValueError(
                f"{self.modality}: expected data of shape (n, {self.n_channels}), got {data.shape}"
            )
        if ts.shape[0] != data.shape[0]:
            raise ValueError(
                f"{self.modality}: {data.shape[0]} samples but {ts.shape[0]} timestamps"
            )
        n = ts.shape[0]
        self.stats.samples_in += n
        if n == 0:
            return Processed.empty(self.n_channels)

        screened = self._screen_timestamps(ts)
        reset: np.ndarray | None = None
        if screened is not None:  # rare: some rows refused or a clock reset
            keep, reset = screened
            data, ts, reset = data[keep], ts[keep], reset[keep]
        lo, hi = self.valid_range
        bad = ~((data >= lo) & (data <= hi))  # NaN compares False: bad too
        if not (math.isfinite(lo) and math.isfinite(hi)):  # an open range must still refuse inf
            bad |= ~np.isfinite(data)
        if bad.any():
            self.stats.bad_values += int(bad.sum())
            usable = ~bad.all(axis=1)
            dropped = int((~usable).sum())
            if dropped:
                self.stats.dropped_rows += dropped
                if reset is not None:
                    # a clock reset on a dropped row still separates what comes after it
                    carried = np.cumsum(reset)
                    reset = np.diff(np.concatenate([[0], carried[usable]])) > 0
                data, ts, bad = data[usable], ts[usable], bad[usable]
        if ts.shape[0] == 0:
            return Processed.empty(self.n_channels)

        values = self._fill_bad(data, bad)
        flags = bad | self._stuck(values, ts)
        starts = self._segment_starts(ts, reset)
        bounds = list(np.flatnonzero(starts)) + [ts.shape[0]]
        parts = []
        if bounds[0] != 0:
            parts.append(self._segment(ts[: bounds[0]], values[: bounds[0]], flags[: bounds[0]], False))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            parts.append(self._segment(ts[a:b], values[a:b], flags[a:b], True))
        self._last_kept_t = float(ts[-1])
        out = Processed.concat(parts, self.n_channels)
        self.stats.samples_out += len(out)
        return out

    # ------------------------------------------------------------------ steps
    def _screen_timestamps(self, ts: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Which rows to keep, and which of them start a new timeline (clock reset);
        None when the chunk is clean (finite, increasing, after the last one)."""
        n = ts.shape[0]
        first, last_t = float(ts[0]), float(ts[-1])
        # NaN fails ">", and an inf inside breaks the increase; so this is a full check
        if first > self._last_t and math.isfinite(last_t) and (n == 1 or bool((np.diff(ts) > 0).all())):
            self._last_t = last_t
            return None
        reset = np.zeros(n, bool)
        keep = np.zeros(n, bool)
        last = self._last_t
        for i, t in enumerate(ts):  # rare path: jitter reversals, NaN times, resets
            if not math.isfinite(t):
                continue
            if t > last:
                keep[i] = True
                last = t
            elif t < last - self.max_gap:
                keep[i] = reset[i] = True
                self.stats.clock_resets += 1
                self._warn("%s: timestamps jumped back by %.3f s: new segment", self.modality, last - t)
                last = t
        rejected = int(n - keep.sum())
        if rejected:
            self.stats.rejected_timestamps += rejected
            self._warn("%s: rejected %d samples with non-finite or non-increasing timestamps", self.modality, rejected)
        self._last_t = last
        return keep, reset

    def _warn(self, msg: str, *args: object) -> None:
        """Warn, but at most every :data:`WARN_INTERVAL_S` per kind of fault, with a count
        (a broken device sends junk at its full rate, and the log must stay readable)."""
        self._limiter.warning(msg, msg, *args)

    def _fill_bad(self, data: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """Replace bad values of partly bad rows by the channel's last good value."""
        if not bad.any():
            self._hold[:] = data[-1]
            return data
        values = data.copy()
        idx = np.arange(values.shape[0])
        for c in range(self.n_channels):
            b = bad[:, c]
            good_idx = np.flatnonzero(~b)
            if b.any():
                last_good = np.maximum.accumulate(np.where(b, -1, idx))
                fallback = self._hold[c]
                if not math.isfinite(fallback):  # nothing good seen yet on this channel
                    fallback = values[good_idx[0], c] if good_idx.size else 0.0
                values[:, c] = np.where(
                    b, np.where(last_good >= 0, values[last_good.clip(0), c], fallback), values[:, c]
                )
            if good_idx.size:
                self._hold[c] = data[good_idx[-1], c]
        return values

    def _stuck(self, values: np.ndarray, ts: np.ndarray) -> np.ndarray:
        """Flag flat lines and clipping: runs of identical raw values.

        A run is flagged from the moment it has lasted the chain's ``flat_max_s`` (stuck or
        disconnected sensor), or ``clip_min_s`` when its value is the stream's running
        maximum or minimum (a sensor or converter at its rail). Causal, so only the part
        of a plateau after the limit is flagged; the window quality drops accordingly.
        """
        flat_lim, clip_lim = self.chain.flat_max_s, self.chain.clip_min_s
        out = np.zeros(values.shape, bool)
        if flat_lim is None and clip_lim is None:
            return out
        n = ts.shape[0]
        changed = np.empty(values.shape, bool)
        changed[0] = ~(values[0] == self._flat_val)  # NaN state (start): a change
        changed[1:] = values[1:] != values[:-1]
        idx = np.arange(n)[:, None]
        run_idx = np.maximum.accumulate(np.where(changed, idx, -1), axis=0)
        start = np.where(run_idx >= 0, ts[run_idx.clip(0)], self._flat_start[None, :])
        lasted = ts[:, None] - start
        self._flat_val = values[-1].copy()
        self._flat_start = start[-1].copy()
        if flat_lim is not None:
            flat = lasted >= flat_lim
            self.stats.flat_samples += int(flat.sum())
            out |= flat
        if clip_lim is not None:
            top = np.maximum(np.maximum.accumulate(values, axis=0), self._run_max)
            bottom = np.minimum(np.minimum.accumulate(values, axis=0), self._run_min)
            self._run_max, self._run_min = top[-1].copy(), bottom[-1].copy()
            clipped = (lasted >= clip_lim) & ((values >= top) | (values <= bottom)) & ~out
            self.stats.clipped_samples += int(clipped.sum())
            out |= clipped
        return out

    def _segment_starts(self, ts: np.ndarray, reset: np.ndarray | None) -> np.ndarray:
        """Rows that begin a new contiguous segment (after a long gap or a reset)."""
        prev = self._last_kept_t if self._last_kept_t is not None else -math.inf
        starts = np.empty(ts.shape[0], bool)
        starts[0] = ts[0] - prev > self.max_gap
        starts[1:] = np.diff(ts) > self.max_gap
        if reset is not None:
            starts |= reset
        if self._prev is None:
            starts[0] = True
        return starts

    def _segment(self, t: np.ndarray, v: np.ndarray, f: np.ndarray, new: bool) -> Processed:
        """Anti-alias, resample and filter rows of one contiguous segment."""
        if new:
            if self._prev is not None:
                log.info("%s: gap of %.2f s not bridged", self.modality, t[0] - self._prev[0])
            self.stats.segments += 1
            self._prev = None
            self._aa_zi = None
            self._chain_zi = None
            # lock the grid to the segment's samples: shift the segment back by where its
            # first sample lies after a grid point (< one working-rate period)
            self._phase = self._grid_phase(float(t[0]))
            self._next_k = math.ceil((t[0] - self._phase) * self.rate - GRID_TOL)
        t = t - self._phase
        if self._aa_sos is not None and self._aa_unit is not None:
            if self._aa_zi is None:
                self._aa_zi = self._aa_unit[:, :, None] * v[0][None, None, :]
            v, self._aa_zi = sps.sosfilt(self._aa_sos, v, axis=0, zi=self._aa_zi)
        out = self._resample(t, v, f)
        if len(out) and self._chain_sos is not None and self._chain_unit is not None:
            vals = out.values.astype(np.float64)
            if self._chain_zi is None:
                self._chain_zi = self._chain_unit[:, :, None] * vals[0][None, None, :]
            vals, self._chain_zi = sps.sosfilt(self._chain_sos, vals, axis=0, zi=self._chain_zi)
            out.values = vals.astype(np.float32)
        if self.chain.clip is not None and len(out):
            np.clip(out.values, self.chain.clip[0], self.chain.clip[1], out=out.values)
        return out

    def _grid_phase(self, t0: float) -> float:
        """Seconds a segment starting at ``t0`` is moved back to lock the grid to its
        samples: where ``t0`` lies after a grid point, when the input period is a whole number
        of working-rate periods (then every regular sample lies there too, whichever came
        first); 0 for other rates, whose samples fall all over the grid anyway (and whose
        first sample depends on when a listener attached)."""
        ratio = self.rate / self.fs_in
        if abs(ratio - round(ratio)) > 1e-6 * ratio or round(ratio) < 1:
            return 0.0
        return (t0 * self.rate - math.floor(t0 * self.rate + GRID_TOL)) / self.rate

    def _resample(self, t: np.ndarray, v: np.ndarray, f: np.ndarray) -> Processed:
        """Linear interpolation onto the grid ``k / rate`` up to the newest sample."""
        if self._prev is not None:
            pt, pv, pf = self._prev
            t = np.concatenate([[pt], t])
            v = np.vstack([pv[None, :], v])
            f = np.vstack([pf[None, :], f])
        self._prev = (float(t[-1]), v[-1].copy(), f[-1].copy())
        gaps = np.diff(t) > self.missing_dt
        self.stats.bridged_gaps += int(gaps.sum())
        k0 = self._next_k
        k1 = math.floor(t[-1] * self.rate + GRID_TOL)
        if k1 < k0:
            return Processed.empty(self.n_channels)
        self._next_k = k1 + 1
        grid = np.arange(k0, k1 + 1, dtype=np.float64) / self.rate
        if t.shape[0] == 1:  # a lone first sample exactly on the grid
            return Processed(
                np.repeat(v[:1], grid.shape[0], 0).astype(np.float32), grid, np.repeat(f[:1], grid.shape[0], 0)
            )
        i = np.minimum(np.maximum(np.searchsorted(t, grid, side="right") - 1, 0), t.shape[0] - 2)
        tl, tr = t[i], t[i + 1]
        w = np.minimum(np.maximum((grid - tl) / (tr - tl), 0.0), 1.0)[:, None]
        vals = v[i] + w * (v[i + 1] - v[i])
        flags = (f[i] & (w < 1.0)) | (f[i + 1] & (w > 0.0)) | gaps[i][:, None]
        return Processed(vals.astype(np.float32), grid, flags)
