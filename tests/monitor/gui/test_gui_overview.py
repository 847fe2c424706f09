"""The overview tab on a real window (offscreen Qt): tiles per subject, click opens the
subject's tab, reflow, sorting, alarms raised by real estimates and acknowledged from a tile,
the alarm rules dialog."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore, QtWidgets

from core import clock
from core.alarms import AlarmRules
from core.estimate import Estimate
from core.streams import StreamSpec
from monitor.gui.overview import SORTS, TILE_MIN_W, AlarmRulesDialog, TileWidget, band_colour_of


def feed(window, subject: str, headline: float, n: int = 3, state: str = "ok") -> None:
    """Signals in the hub and ``n`` estimates through the pipeline (as the engine delivers)."""
    t = clock.now()
    window.session.hub.push(StreamSpec(subject, "BVP", nominal_rate=64.0), np.zeros((64, 1), np.float32),
                            t - 1 + np.arange(64) / 64)
    for i in range(n):
        window.session.pipeline.deliver(Estimate(subject, t - n + i + 1, headline, (0.2, 0.3, 0.5),
                                                 smoothed=headline, quality={"BVP": 0.9}, state=state))


def test_tiles_show_headline_band_state_health_and_open_the_subject(qtbot, window):
    feed(window, "bed-1", 80.0)
    feed(window, "bed-2", 10.0, state="calibrating")
    qtbot.waitUntil(lambda: set(window.panels) == {"bed-1", "bed-2"}, timeout=3000)
    assert window.tabs.widget(0) is window.overview and window.tabs.currentWidget() is window.overview
    window.overview.refresh(force=True)
    tiles = window.overview.tiles
    assert set(tiles) == {"bed-1", "bed-2"}
    one, two = tiles["bed-1"].data, tiles["bed-2"].data
    assert one["headline"] == 80.0 and one["band"] == "high" and one["state_text"] == "ok"
    assert two["band"] == "no" and two["state_text"] == "calibrating"  # in words, not only colour
    assert one["health"] == {"BVP": "good"} and one["sparkline"][-1][1] == 80.0
    assert "bed-2: 10 (no pain), state calibrating" in window.overview.tile_text()[1]
    assert band_colour_of("high") != band_colour_of("no") != band_colour_of(None)
    qtbot.waitUntil(lambda: tiles["bed-1"].paints > 0, timeout=3000)
    qtbot.mouseClick(tiles["bed-2"], QtCore.Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is window.panels["bed-2"]
    assert window.current_subject() == "bed-2"


def test_reflow_for_1_to_32_subjects_and_sorting(qtbot, window):
    window.resize(1200, 800)
    for i in range(32):
        feed(window, f"s{i:02d}", float(i * 3), n=1)
    qtbot.waitUntil(lambda: len(window.panels) == 32, timeout=5000)
    ov = window.overview
    ov.refresh(force=True)
    width = ov.scroll_area.viewport().width()
    columns = ov.columns_for(width)
    assert columns >= 3 and ov.grid.columnCount() >= columns
    positions = {name: ov.grid.getItemPosition(ov.grid.indexOf(tile))[:2] for name, tile in ov.tiles.items()}
    assert positions["s00"] == (0, 0) and positions["s01"] == (0, 1)
    assert positions[f"s{columns:02d}"] == (1, 0)  # wrapped to the next row
    assert all(t.width() >= TILE_MIN_W for t in ov.tiles.values())
    window.resize(600, 800)  # narrower: fewer columns
    qtbot.waitUntil(lambda: ov._columns < columns, timeout=3000)
    assert ov.grid.getItemPosition(ov.grid.indexOf(ov.tiles["s01"]))[:2] == (ov._columns == 1 and (1, 0) or (0, 1))
    # by alarm, then index: the highest headline first when no alarms
    ov.sort_box.setCurrentText(SORTS[1])
    assert ov._order[0] == "s31" and ov._order[-1] == "s00"
    ov.sort_box.setCurrentText(SORTS[0])
    assert ov._order[:2] == ["s00", "s01"]


def test_single_subject_opens_on_its_own_tab(qtbot, window):
    feed(window, "solo", 50.0)
    qtbot.waitUntil(lambda: "solo" in window.panels, timeout=3000)
    assert window.tabs.currentWidget() is window.panels["solo"]


def test_alarm_raised_sorted_first_acknowledged_from_the_tile_and_drawn_as_markers(qtbot, window):
    window.session.alarms.set_rules(None, AlarmRules(level=70, level_for_s=0, enabled=("level",)))
    feed(window, "a-calm", 20.0)
    feed(window, "z-hot", 90.0)
    qtbot.waitUntil(lambda: len(window.panels) == 2, timeout=3000)
    ov = window.overview
    ov.sort_box.setCurrentText(SORTS[1])
    ov.refresh(force=True)
    assert ov._order == ["z-hot", "a-calm"]  # the alarm first, whatever the name
    hot = ov.tiles["z-hot"]
    assert [a["state"] for a in hot.data["alarms"]] == ["raised"] and hot.ack_button.isVisibleTo(hot)
    assert "level alarm raised" in hot.text_summary()
    assert ov.summary.text() == "2 subject(s), 1 raised alarm(s)"
    qtbot.mouseClick(hot.ack_button, QtCore.Qt.MouseButton.LeftButton)
    assert [a["state"] for a in hot.data["alarms"]] == ["acknowledged"] and not hot.ack_button.isVisibleTo(hot)
    labels = [m.label for m in window.session.hub.markers("z-hot")]
    assert labels == ["alarm:level:raised", "alarm:level:acknowledged"]  # the trend draws hub markers
    window.show_subject("z-hot")
    panel = window.panels["z-hot"]
    panel.refresh_trend(window.session.hub, window.log, window.session.newest_time())
    assert len(panel.trend.marker_lines) == 2


def test_alarm_rules_dialog_edits_default_and_one_subject(qtbot, window):
    feed(window, "bed-7", 30.0)
    alarms = window.session.alarms
    dialog = AlarmRulesDialog(alarms.rules_for, ["bed-7"], window)
    qtbot.addWidget(dialog)
    assert dialog.boxes["level"].value() == AlarmRules().level
    dialog.boxes["level"].setValue(55)
    dialog.enabled["rise"].setChecked(False)
    alarms.set_rules(dialog.subject(), dialog.rules())
    assert alarms.rules_for(None).level == 55 and "rise" not in alarms.rules_for("bed-7").enabled
    dialog.subject_box.setCurrentIndex(1)  # bed-7's own rules
    dialog.boxes["stale_s"].setValue(12)
    alarms.set_rules(dialog.subject(), dialog.rules())
    assert alarms.rules_for("bed-7").stale_s == 12 and alarms.rules_for("other").stale_s == AlarmRules().stale_s


def test_tile_repaints_only_when_its_data_changes(qtbot):
    tile = TileWidget("x")
    qtbot.addWidget(tile)
    tile.show()
    data = dict(tile.data, headline=42.0, band="low", state="ok", state_text="ok")
    assert tile.set_data(data) is True
    assert tile.set_data(dict(data)) is False
    assert isinstance(tile.ack_button, QtWidgets.QPushButton)


def test_dashboard_serves_its_ward_over_http_with_its_alarm_config(qtbot, tmp_path, monkeypatch):
    import json
    import urllib.request

    from core.alarms import load_alarm_config
    from monitor.gui.app import build_window
    from monitor.gui.settings import GuiSettings
    from monitor.web import HttpOptions

    monkeypatch.setenv("PAINMON_SETTINGS", str(tmp_path / "settings.ini"))
    config = tmp_path / "alarms.json"
    config.write_text('{"default": {"level": 10, "level_for_s": 0, "enabled": ["level"]}}')
    window = build_window(engine=False, settings=GuiSettings(),
                          ward=(load_alarm_config(config), HttpOptions(port=0)))
    qtbot.addWidget(window)
    try:
        (server,) = [h for h in window.session.pipeline.helpers if hasattr(h, "url")]
        feed(window, "bed-9", 40.0)
        with urllib.request.urlopen(server.url + "/api/subjects", timeout=10) as r:
            listing = json.loads(r.read())
        (tile,) = listing["subjects"]
        assert tile["subject"] == "bed-9" and tile["headline"] == 40.0
        assert [a["kind"] for a in tile["alarms"]] == ["level"]  # the file's level 10, not the default 70
    finally:
        window.close()
    assert server._thread is None  # stopped with the session
