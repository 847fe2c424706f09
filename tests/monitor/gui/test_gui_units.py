"""Dashboard logic without a window: settings persistence, CSV export, quality verdicts,
status texts, colour bands, gap breaking."""

import csv
import math

import numpy as np
import pytest
from PySide6 import QtCore

from core.estimate import Estimate
from core.streams import StreamHealth, StreamSpec
from monitor.gui.estimate_log import EstimateLog
from monitor.gui.quality import classify
from monitor.gui.settings import GuiSettings, load_settings, save_settings
from monitor.gui.signal_plot import break_gaps
from monitor.gui.status_bar import format_engine, format_stream, format_streams
from monitor.gui.theme import BAND_COLOURS, GREYED, band_colour
from monitor.gui.trend_plot import marker_text


def _store(tmp_path) -> QtCore.QSettings:
    return QtCore.QSettings(str(tmp_path / "painmon.ini"), QtCore.QSettings.Format.IniFormat)


def test_settings_round_trip_through_qsettings(tmp_path):
    s = GuiSettings(plot_span_s=60.0, trend_span_min=15.0, theme="dark", window_s=8.0, hop_s=0.5,
                    model_path="/x/m.pt", device="cpu", mqtt_port=1884, mqtt_tls=True)
    save_settings(s, _store(tmp_path))
    assert load_settings(_store(tmp_path)) == s  # a fresh store object reads the file back


def test_settings_missing_or_bad_values_fall_back_to_defaults(tmp_path):
    store = _store(tmp_path)
    assert load_settings(store) == GuiSettings()
    store.setValue("plot_span_s", "not a number")
    store.setValue("theme", "dark")
    store.sync()
    loaded = load_settings(_store(tmp_path))
    assert loaded.plot_span_s == GuiSettings().plot_span_s and loaded.theme == "dark"
    store.setValue("hop_s", 99.0)  # hop longer than the window: the whole file is distrusted
    store.sync()
    assert load_settings(_store(tmp_path)) == GuiSettings()


def test_settings_validation_names_each_problem():
    problems = GuiSettings(plot_span_s=500, theme="pink", hop_s=0.0, mqtt_port=0).validate()
    assert len(problems) == 4
    assert any("theme" in p for p in problems) and any("port" in p for p in problems)


def _est(subject, t, index, valid=True, quality=None):
    p_high = index / 100.0
    return Estimate(subject, t, index, (1 - p_high, 0.0, p_high), smoothed=index - 1, smoothed_long=math.nan,
                    quality=quality or {}, valid=valid, model="m1", latency={"total": 0.05},
                    missing=() if valid else ("BVP",))


def test_estimate_log_csv_has_header_and_every_estimate(tmp_path):
    log = EstimateLog()
    log.add(_est("sim-2", 11.0, 40.0, quality={"EDA": 0.9}))
    log.add(_est("sim-1", 10.0, 20.0, quality={"BVP": 0.5}))
    log.add(_est("sim-1", 12.0, 80.0, valid=False))
    path = tmp_path / "est.csv"
    assert log.to_csv(path) == 3
    rows = list(csv.DictReader(path.open()))
    assert [r["subject"] for r in rows] == ["sim-1", "sim-2", "sim-1"]  # time order
    assert set(rows[0]) >= {"t_end", "index", "p_no", "p_low", "p_high", "quality_BVP", "quality_EDA", "valid"}
    assert float(rows[2]["index"]) == 80.0 and rows[2]["valid"] == "0" and rows[2]["missing"] == "BVP"
    assert rows[0]["quality_EDA"] == "" and float(rows[0]["quality_BVP"]) == 0.5
    assert rows[0]["smoothed_long"] == ""  # NaN is written as missing, not as text
    assert log.to_csv(tmp_path / "one.csv", subject="sim-2") == 1


def test_estimate_log_trend_filters_by_time_and_tracks_version():
    log = EstimateLog()
    v0 = log.version
    for k in range(5):
        log.add(_est("s", 100.0 + k, 10.0 * k, valid=k != 2))
    arrays = log.trend("s", since=102.0)
    np.testing.assert_array_equal(arrays.t, [102.0, 103.0, 104.0])
    np.testing.assert_array_equal(arrays.valid, [False, True, True])
    assert log.version == v0 + 5 and log.latest("s").index == 40.0 and log.latest("x") is None


@pytest.mark.parametrize(
    ("age", "rate", "connected", "eff", "sq", "level"),
    [
        (math.nan, 64, True, None, None, "unknown"),
        (0.1, 64, False, None, None, "lost"),
        (4.0, 64, True, 64.0, 0.9, "lost"),
        (4.0, 1 / 3, True, None, None, "good"),  # a slow stream is not lost after 4 s
        (0.1, 64, True, 30.0, 0.9, "poor"),
        (0.1, 64, True, 63.0, 0.2, "poor"),
        (0.1, 64, True, 63.0, 0.9, "good"),
    ],
)
def test_quality_verdicts(age, rate, connected, eff, sq, level):
    assert classify(age, rate, connected, eff, sq).level == level


def test_status_texts():
    spec = StreamSpec("sim-1", "BVP", nominal_rate=64.0)
    good = StreamHealth(spec, connected=True, samples=100, effective_rate=63.84, dropped=2)
    assert format_stream(good) == "BVP 63.8/64 Hz"
    lost = StreamHealth(StreamSpec("sim-2", "EDA", nominal_rate=4.0), connected=False, status="lost 3 s ago")
    assert format_stream(lost) == "EDA lost 3 s ago"
    short, tip = format_streams([good, lost], "sim-1")
    assert short == "BVP 63.8/64 Hz" and "sim-2 EDA lost" in tip and "2 dropped" in tip
    assert format_engine("loading", None, math.nan) == "model: loading"
    markers = StreamHealth(StreamSpec("sim-1", "Markers"), connected=True, samples=3)
    assert format_stream(markers) == "Markers 3 events"
    eda = StreamHealth(StreamSpec("sim-1", "EDA", nominal_rate=4.0), connected=True, samples=9, effective_rate=4.0)
    short, _ = format_streams([markers, good, eda], "sim-1")
    assert short == "EDA 4.0/4 Hz · BVP 63.8/64 Hz · Markers 3 events"  # the usual modality order


def test_band_colours_follow_the_fixed_class_bands():
    assert band_colour(0) == band_colour(33.3) == BAND_COLOURS[0]
    assert band_colour(33.4) == band_colour(66.6) == BAND_COLOURS[1]
    assert band_colour(66.7) == band_colour(100) == BAND_COLOURS[2]
    assert band_colour(math.nan) == GREYED


def test_marker_texts():
    assert marker_text("pain:high") == "high"
    assert marker_text("user:pain-reported") == "pain reported"
    assert marker_text("note:gave water") == "gave water"
    assert marker_text("Stim") == "Stim"


def test_break_gaps_inserts_nan_only_at_gaps():
    t = np.r_[np.arange(10) * 0.1, 5 + np.arange(10) * 0.1]
    data = np.ones((20, 1))
    x, y = break_gaps(t, data)
    assert x.size == 21 and np.isnan(x[10]) and np.isnan(y[10, 0])
    assert np.isfinite(np.delete(y, 10)).all()
    x2, _ = break_gaps(np.arange(10) * 0.1, np.ones((10, 1)))
    assert x2.size == 10


def test_estimate_log_handles_out_of_order_and_trims_in_batches():
    log = EstimateLog(max_per_subject=100)
    for k in range(50):
        log.add(_est("s", 1000.0 + k, 10.0))
    for k in range(30):  # a replay restarted: time went back
        log.add(_est("s", 900.0 + k, 20.0))
    np.testing.assert_array_equal(log.trend("s", since=1045.0).t, [1045.0, 1046.0, 1047.0, 1048.0, 1049.0])
    assert len(log.trend("s", since=920.0).t) == 50 + 10
    for k in range(200):
        log.add(_est("s", 2000.0 + k, 30.0))
    assert 100 <= len(log.estimates("s")) <= 110
    assert log.latest("s").t_end == 2199.0
    assert log.trend("s", since=2190.0).t.size == 10


def test_model_notice_names_the_model_and_its_training_data():
    from monitor.gui.main_window import model_notice
    from monitor.gui.session import read_model_info

    info = read_model_info(None)  # the bundled model
    assert info["name"] == "painmon-default"
    text, tip = model_notice("x", info)
    assert text.startswith("Research use only — not a clinical device.")
    assert "Model: painmon-default, trained on " in text and "simulat" in text
    assert info["not_clinical"] in tip and info["trained_on"] in tip
    assert model_notice("small", None)[0].endswith("Model: small")
