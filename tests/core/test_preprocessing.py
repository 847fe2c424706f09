"""Streaming preprocessing: chunk invariance, resampling, filtering, gaps and artefacts."""

from __future__ import annotations

import numpy as np
import pytest
import pyxdf
from scipy import signal as sps

from core.modalities import DEFAULT_MODALITIES, REGISTRY, match_modality
from core.preprocessing import CHAINS, ChainSpec, FilterSpec, Processed, StreamPreprocessor, chain_for

T0 = 5000.0  # a realistic local_clock() value: seconds since boot


def _stream(fs: float, seconds: float, fn, seed: int = 0, jitter: float = 0.1):
    """Samples of ``fn(t)`` at ``fs`` Hz with timestamp jitter of +-jitter periods."""
    rng = np.random.default_rng(seed)
    n = int(seconds * fs)
    t = T0 + np.arange(n) / fs + rng.uniform(-jitter, jitter, n) / fs
    return fn(t, rng), t


def _feed(pre: StreamPreprocessor, x: np.ndarray, t: np.ndarray, rng=None, max_chunk: int = 50) -> Processed:
    """Feed in random chunk sizes (1..max_chunk, some empty), concatenating the output."""
    rng = rng or np.random.default_rng(123)
    parts, i = [], 0
    while i < len(t):
        k = int(rng.integers(0, max_chunk + 1))
        parts.append(pre.process(x[i : i + k], t[i : i + k]))
        i += k
    return Processed.concat(parts, pre.n_channels)


def _realistic(modality: str):
    return {
        "EDA": lambda t, r: 4.0 + 0.5 * np.sin(2 * np.pi * 0.05 * t) + 0.01 * r.standard_normal(t.size),
        "BVP": lambda t, r: np.sin(2 * np.pi * 1.2 * t) + 0.1 * r.standard_normal(t.size),
        "RESP": lambda t, r: np.sin(2 * np.pi * 0.25 * t) + 0.05 * r.standard_normal(t.size),
        "SpO2": lambda t, r: np.round(97.0 + np.sin(2 * np.pi * 0.02 * t)),
    }[modality]


# ----------------------------------------------------------------------- chunk invariance
@pytest.mark.parametrize(
    ("modality", "fs"),
    [("EDA", 4.0), ("BVP", 64.0), ("RESP", 25.0), ("SpO2", 1.0), ("BVP", 2048.0), ("RESP", 100.0)],
)
def test_chunked_equals_whole(modality, fs):
    x, t = _stream(fs, 40.0 if fs < 1000 else 8.0, _realistic(modality))
    x = x[:, None].copy()
    x[len(x) // 3] = np.nan  # a bad sample and a short dropout inside
    x[len(x) // 2 : len(x) // 2 + 2] = np.nan
    whole = StreamPreprocessor(modality, fs).process(x, t)
    chunked = _feed(StreamPreprocessor(modality, fs), x, t, max_chunk=max(3, int(fs)))
    assert len(whole) > 0
    np.testing.assert_array_equal(chunked.timestamps, whole.timestamps)
    np.testing.assert_allclose(chunked.values, whole.values, rtol=0, atol=1e-5)
    np.testing.assert_array_equal(chunked.flags, whole.flags)


def test_filter_state_is_what_makes_chunks_equal():
    """Sanity of the test above: restarting per chunk (no kept state) does differ."""
    x, t = _stream(64.0, 20.0, _realistic("BVP"))
    whole = StreamPreprocessor("BVP", 64.0).process(x, t)
    restarted = [StreamPreprocessor("BVP", 64.0).process(x[i : i + 64], t[i : i + 64]) for i in range(0, len(t), 64)]
    vals = np.concatenate([p.values for p in restarted])
    assert not np.allclose(vals[: len(whole)], whole.values[: len(vals)], atol=1e-3)


# ----------------------------------------------------------------------- resampling
@pytest.mark.parametrize("fs", [4.0, 25.0, 64.0, 100.0, 128.0, 2048.0])
def test_resampled_onto_the_shared_working_grid(fs):
    x, t = _stream(fs, 6.0, lambda t, r: np.sin(2 * np.pi * 0.3 * t) + 5.0)
    out = StreamPreprocessor("EDA", fs).process(x, t)
    assert out.values.dtype == np.float32 and out.timestamps.dtype == np.float64 and out.flags.dtype == bool
    k = out.timestamps * 100.0
    np.testing.assert_allclose(k, np.round(k), atol=1e-6)  # on the grid k / 100
    np.testing.assert_allclose(np.diff(out.timestamps), 0.01, atol=1e-9)
    # phase-locked (rates dividing 100 Hz): the grid starts less than a period before the first sample
    assert abs(out.timestamps[0] - t[0]) < 0.01 and out.timestamps[-1] <= t[-1] + 1e-9
    assert len(out) >= int((t[-1] - t[0]) * 100) - 1
    # the slow sine passes the 1.5 Hz low-pass unchanged but for a small delay
    settled = out.timestamps > t[0] + 2.0
    ts, v = out.timestamps[settled], out.values[settled, 0]
    errors = {lag: np.abs(v - 5.0 - np.sin(2 * np.pi * 0.3 * (ts - lag))).max() for lag in np.arange(0, 0.5, 0.01)}
    best = min(errors, key=errors.get)
    assert errors[best] < 0.03 and 0.05 < best < 0.3, (best, errors[best])


@pytest.mark.parametrize(("modality", "fs"), [("SpO2", 1.0), ("EDA", 4.0), ("RESP", 25.0), ("BVP", 50.0)])
def test_the_clock_phase_of_a_stream_does_not_change_its_processed_signal(modality, fs):
    """Samples anywhere between two grid points (a live device, a replay shifted onto the
    clock) give what the same samples on the grid give (training recordings start at 0), for
    rates that divide the working rate (the others fall all over the grid anyway)."""
    rng = np.random.default_rng(2)
    n = int(60 * fs)
    x = {"SpO2": np.round(97 + np.cumsum(rng.standard_normal(n)) * 0.2),
         "EDA": 5 + np.cumsum(rng.standard_normal(n)) * 0.01,
         "RESP": np.sin(2 * np.pi * 0.25 * np.arange(n) / fs),
         "BVP": np.sin(2 * np.pi * 1.2 * np.arange(n) / fs)}[modality]
    t = np.arange(n) / fs
    late = StreamPreprocessor(modality, fs)
    late.process(x[7:], 1000.0037 + t[7:])  # another first sample: the same phase
    assert late._phase == pytest.approx(0.0037, abs=1e-9)
    ref = StreamPreprocessor(modality, fs).process(x, 1000.0 + t)
    for shift in (0.001, 0.0043, 0.005, 0.0099, 7.5, 123456.0037):
        out = StreamPreprocessor(modality, fs).process(x, 1000.0 + shift + t)
        lead = (1000.0 + shift - out.timestamps[0]) - (1000.0 - ref.timestamps[0])
        assert 0 <= lead < 0.01  # placed less than one working-rate period early
        np.testing.assert_allclose(out.values, ref.values, rtol=0, atol=1e-4)
        np.testing.assert_array_equal(out.flags, ref.flags)


def test_fast_input_is_antialiased_before_decimation():
    """A 310 Hz tone in a 2048 Hz stream would alias to 10 Hz at 100 Hz; it must not."""
    fs = 2048.0
    x, t = _stream(fs, 6.0, lambda t, r: np.sin(2 * np.pi * 1.2 * t) + np.sin(2 * np.pi * 310.0 * t), jitter=0.0)
    out = StreamPreprocessor("BVP", fs).process(x, t)
    v = out.values[200:, 0]
    f, p = sps.periodogram(v, fs=100.0)

    def at(hz: float) -> float:
        return p[np.argmin(np.abs(f - hz))]

    assert at(10.0) < 1e-3 * at(1.2)


@pytest.mark.parametrize(
    ("modality", "keep_hz", "drop_hz"),
    [("BVP", 1.2, 25.0), ("BVP", 1.2, 0.02), ("RESP", 0.25, 5.0), ("EDA", 0.1, 10.0)],
)
def test_chains_keep_their_band(modality, keep_hz, drop_hz):
    fs = 100.0
    n = int(60 * fs)
    t = T0 + np.arange(n) / fs

    def ampl(hz: float):
        return lambda t, r: 5.0 + np.sin(2 * np.pi * hz * t)

    settled = slice(int(30 * fs), None)
    keep = StreamPreprocessor(modality, fs).process(ampl(keep_hz)(t, None), t).values[settled, 0]
    drop = StreamPreprocessor(modality, fs).process(ampl(drop_hz)(t, None), t).values[settled, 0]
    assert np.ptp(keep) > 1.4  # amplitude ~1 survives (peak-to-peak ~2)
    assert np.ptp(drop) < 0.3 * np.ptp(keep)


def test_bandpass_removes_offset_without_startup_transient():
    fs = 64.0
    x, t = _stream(fs, 10.0, lambda t, r: 1000.0 + np.sin(2 * np.pi * 1.2 * t), jitter=0.0)
    out = StreamPreprocessor("BVP", fs).process(x, t).values[:, 0]
    assert np.abs(out).max() < 2.0  # a 1000-unit step at start-up would ring far beyond


# ----------------------------------------------------------------------- gaps and artefacts
def test_short_gap_is_bridged_and_flagged_long_gap_is_not():
    fs = 64.0
    x, t = _stream(fs, 30.0, _realistic("BVP"), jitter=0.0)
    short = (t > T0 + 8.0) & (t < T0 + 8.3)  # 0.3 s dropout: bridged
    long_ = (t > T0 + 15.0) & (t < T0 + 20.0)  # 5 s dropout: a gap
    keep = ~(short | long_)
    pre = StreamPreprocessor("BVP", fs)
    out = _feed(pre, x[keep], t[keep])
    ts = out.timestamps
    in_short = (ts > T0 + 8.02) & (ts < T0 + 8.28)
    assert in_short.sum() >= 24 and out.flags[in_short, 0].all()
    assert not out.flags[(ts > T0 + 9.0) & (ts < T0 + 14.0)].any()
    assert not ((ts > T0 + 15.05) & (ts < T0 + 19.95)).any()  # nothing invented in the long gap
    assert np.isfinite(out.values).all()
    assert pre.stats.segments == 2 and pre.stats.bridged_gaps >= 1


def test_nan_and_out_of_range_samples_are_interpolated_and_flagged():
    fs = 25.0
    x, t = _stream(fs, 20.0, lambda t, r: 2.0 + np.sin(2 * np.pi * 0.2 * t), jitter=0.0)
    x = x.copy()
    x[200] = np.nan
    x[300] = np.inf
    x[400] = 150.0  # EDA above 100 uS is not physiological
    pre = StreamPreprocessor("EDA", fs)
    out = pre.process(x, t)
    assert np.isfinite(out.values).all()
    for i in (200, 300, 400):
        near = np.abs(out.timestamps - t[i]) < 0.03
        assert near.any() and out.flags[near, 0].all()
        assert np.abs(out.values[near, 0] - (2.0 + np.sin(2 * np.pi * 0.2 * t[i]))).max() < 0.3
    assert out.flags.sum() <= 3 * 9  # only the grid points next to the 3 bad samples
    assert pre.stats.bad_values == 3 and pre.stats.dropped_rows == 3


def test_spo2_is_clipped_to_its_physical_range():
    fs = 1.0
    t = T0 + np.arange(30.0)
    x = np.full(30, 99.5)
    x[10] = 100.0
    x[11] = 104.0  # outside the plausible range: artefact
    out = StreamPreprocessor("SpO2", fs).process(x, t)
    assert out.values.max() <= 100.0 and out.values.min() >= 99.0
    near = np.abs(out.timestamps - t[11]) < 0.5
    assert out.flags[near, 0].all()


def test_flat_line_is_flagged_for_bvp_but_not_spo2():
    fs = 64.0
    x, t = _stream(fs, 12.0, _realistic("BVP"), jitter=0.0)
    x = x.copy()
    x[int(3 * fs) : int(8 * fs)] = 0.25  # sensor stuck for 5 s
    out = StreamPreprocessor("BVP", fs).process(x, t)
    ts = out.timestamps
    assert out.flags[(ts > T0 + 5.1) & (ts < T0 + 7.9), 0].all()  # beyond flat_max_s = 2 s
    assert not out.flags[(ts > T0 + 3.1) & (ts < T0 + 4.9), 0].any()  # could still be real
    spo2 = StreamPreprocessor("SpO2", 1.0).process(np.full(20, 98.0), T0 + np.arange(20.0))
    assert not spo2.flags.any()


def test_bad_timestamps_are_rejected_and_counted_not_fatal():
    fs = 50.0
    x, t = _stream(fs, 4.0, _realistic("RESP"), jitter=0.0)
    t = t.copy()
    holes = t[[50, 60, 70]].copy()
    t[50] = t[49] - 0.001  # out of order
    t[60] = np.nan
    t[70] = t[69]  # duplicate
    pre = StreamPreprocessor("RESP", fs)
    out = pre.process(x, t)
    assert pre.stats.rejected_timestamps == 3
    assert np.all(np.diff(out.timestamps) > 0) and np.isfinite(out.values).all()
    # the refused rows leave 1-sample holes: bridged and flagged there, nowhere else
    flagged = out.timestamps[out.flags[:, 0]]
    assert flagged.size > 0
    assert np.all(np.min(np.abs(flagged[:, None] - holes[None]), axis=1) < 0.03)


def test_wrong_shapes_raise_clear_errors():
    pre = StreamPreprocessor("BVP", 64.0, n_channels=2)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        pre.process(np.zeros((10, 3)), np.arange(10.0))
    with pytest.raises(ValueError, match="10 samples but 9 timestamps"):
        pre.process(np.zeros((10, 2)), np.arange(9.0))
    with pytest.raises(ValueError, match="input rate"):
        StreamPreprocessor("BVP", 0.0)
    with pytest.raises(KeyError, match="unknown modality"):
        StreamPreprocessor("EEG", 256.0)
    with pytest.raises(ValueError, match="must be numeric"):
        pre.process(np.array([["a", "b"]]), np.array([1.0]))
    # nothing was consumed by the refused chunks
    assert pre.stats.samples_in == 0


def test_open_valid_range_still_refuses_inf():
    chain = ChainSpec(valid_range=(-np.inf, np.inf))
    t = T0 + np.arange(50) / 10.0
    x = np.sin(t)
    x[20] = np.inf
    out = StreamPreprocessor("RESP", 10.0, chain=chain).process(x, t)
    assert np.isfinite(out.values).all() and out.flags.any()


def test_multichannel_partial_nan_uses_last_good_value():
    fs = 100.0
    t = T0 + np.arange(300) / fs
    x = np.stack([np.sin(2 * np.pi * 1.0 * t), np.cos(2 * np.pi * 1.0 * t)], axis=1)
    x[150, 1] = np.nan
    out = StreamPreprocessor("BVP", fs, n_channels=2).process(x, t)
    assert out.values.shape[1] == 2 and np.isfinite(out.values).all()
    row = np.argmin(np.abs(out.timestamps - t[150]))
    assert out.flags[row, 1] and not out.flags[row, 0]


def test_real_xdf_with_clock_reset(xdf_dir):
    """A real LabRecorder file whose device clock was reset mid-recording."""
    streams, _ = pyxdf.load_xdf(
        str(xdf_dir / "clock_resets.xdf"),
        select_streams=[{"name": "BioSemi"}],
        synchronize_clocks=False,
        dejitter_timestamps=False,
    )
    s = streams[0]
    x = np.asarray(s["time_series"], dtype=np.float64)[:, :2]
    t = np.asarray(s["time_stamps"], dtype=np.float64)
    fs = float(s["info"]["nominal_srate"][0])
    whole_pre = StreamPreprocessor("BVP", fs, n_channels=2)
    whole = whole_pre.process(x, t)
    chunked = _feed(StreamPreprocessor("BVP", fs, n_channels=2), x, t, max_chunk=200)
    assert whole_pre.stats.clock_resets == 1 and whole_pre.stats.segments == 2
    np.testing.assert_array_equal(chunked.timestamps, whole.timestamps)
    np.testing.assert_allclose(chunked.values, whole.values, atol=1e-5)
    reset = np.flatnonzero(np.diff(whole.timestamps) < 0)
    assert reset.size == 1  # exactly one jump back: the reset; both sides on the grid
    for seg in (whole.timestamps[: reset[0] + 1], whole.timestamps[reset[0] + 1 :]):
        np.testing.assert_allclose(np.diff(seg), 0.01, atol=1e-7)
    assert np.isfinite(whole.values).all()


# ----------------------------------------------------------------------- registry
def test_every_default_modality_has_a_chain_and_name_matching():
    for name in DEFAULT_MODALITIES:
        assert name in CHAINS
        assert chain_for(name.lower()) is CHAINS[name]
    assert match_modality("GSR") == "EDA" and match_modality("PPG") == "BVP"
    assert match_modality("Respiration") == "RESP" and match_modality("oxygen") == "SpO2"
    # registered modalities without a chain get an empty one rather than an error
    for name in REGISTRY:
        chain_for(name)


def test_chain_is_configuration():
    """A site can pass its own chain; a band edge above Nyquist degrades gracefully."""
    custom = ChainSpec(filters=(FilterSpec("bandpass", (0.5, 80.0), 2),), flat_max_s=None)
    assert custom.design(100.0).shape[0] == 1  # the band-pass became a 2nd-order high-pass
    fs = 100.0
    t = T0 + np.arange(2000) / fs
    out = StreamPreprocessor("BVP", fs, chain=custom).process(5.0 + np.sin(2 * np.pi * 20.0 * t), t)
    assert np.ptp(out.values[1000:, 0]) > 1.8  # 20 Hz kept: no low-pass left
    assert abs(float(out.values[1000:, 0].mean())) < 0.1  # offset removed by the high-pass


def test_warnings_are_rate_limited_but_counted(caplog):
    fs = 10.0
    pre = StreamPreprocessor("RESP", fs)
    t = T0 + np.arange(5) / fs  # 0.4 s: a repeat is stale data, not a clock reset
    pre.process(np.zeros(5), t)
    with caplog.at_level("WARNING", logger="core.preprocessing.stream"):
        for _ in range(5):  # the same stale chunk again and again
            pre.process(np.zeros(5), t)
    assert pre.stats.rejected_timestamps == 25 and pre.stats.clock_resets == 0
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1


def test_clipping_is_flagged_but_quantised_peaks_are_not():
    fs = 64.0
    x, t = _stream(fs, 20.0, lambda t, r: np.sin(2 * np.pi * 1.2 * t), jitter=0.0)
    pre = StreamPreprocessor("BVP", fs)
    out = pre.process(np.clip(x, -0.8, 0.8), t)  # a saturated PPG front end
    assert pre.stats.clipped_samples > 0
    frac = out.flags[:, 0].mean()
    assert 0.03 < frac < 0.3  # the late part of each plateau, causally
    # a clean signal, even coarsely quantised at a high rate, has no clipping flags
    fs = 2048.0
    x, t = _stream(fs, 5.0, lambda t, r: np.round(2047 * np.sin(2 * np.pi * 1.2 * t)), jitter=0.0)
    clean = StreamPreprocessor("BVP", fs)
    assert not clean.process(x, t).flags.any() and clean.stats.clipped_samples == 0
    # and the chunked result is the same as the whole
    x, t = _stream(64.0, 20.0, lambda t, r: np.clip(np.sin(2 * np.pi * 1.2 * t), -0.8, 0.8), jitter=0.0)
    whole = StreamPreprocessor("BVP", 64.0).process(x, t)
    chunked = _feed(StreamPreprocessor("BVP", 64.0), x, t, max_chunk=10)
    np.testing.assert_array_equal(chunked.flags, whole.flags)
