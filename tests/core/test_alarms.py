"""The alarm rules and state machine (pure: driven with an explicit clock)."""

from __future__ import annotations

import math

import pytest

from core.alarms import AlarmConfig, AlarmConfigError, AlarmMachine, AlarmRules, load_alarm_config


def feed(machine: AlarmMachine, values, *, t0: float = 0.0, step: float = 1.0, state: str = "ok", subject="s"):
    events = []
    for i, v in enumerate(values):
        events += machine.update(subject, t0 + i * step, v, state)
    return events


def test_level_raised_only_after_duration_then_cleared_below_hysteresis():
    m = AlarmMachine(AlarmConfig(AlarmRules(level=70, level_for_s=10, hysteresis=5, enabled=("level",))))
    assert feed(m, [80] * 10) == []  # 0..9 s above: not yet 10 s
    ev = m.update("s", 10.0, 81.0, "ok")
    assert [(e.kind, e.transition) for e in ev] == [("level", "raised")]
    assert ev[0].value == 81.0 and ev[0].threshold == 70 and ev[0].label == "alarm:level:raised"
    assert m.update("s", 11.0, 67.0, "ok") == []  # inside the hysteresis band: stays on
    assert [a.state for a in m.active("s")] == ["raised"]
    ev = m.update("s", 12.0, 64.0, "ok")
    assert [(e.transition, e.alarm_id) for e in ev] == [("cleared", 1)]
    assert m.active() == []


def test_level_timer_restarts_when_the_headline_dips():
    m = AlarmMachine(AlarmConfig(AlarmRules(level=70, level_for_s=5, enabled=("level",))))
    assert feed(m, [80, 80, 80, 60, 80, 80, 80, 80, 80]) == []  # 4 s above after the dip
    assert len(m.update("s", 9.0, 80, "ok")) == 1


@pytest.mark.parametrize("state", ["calibrating", "stale"])
def test_never_raised_while_calibrating_or_stale(state):
    m = AlarmMachine(AlarmConfig(AlarmRules(level=10, level_for_s=0, rise_points=5, enabled=("level", "rise"))))
    assert feed(m, [0, 50, 90, 95], state=state) == []
    # trusted again: the level timer starts now, the rise history was reset
    ev = m.update("s", 10.0, 95, "ok")
    assert [e.kind for e in ev] == ["level"]


def test_rise_within_window():
    m = AlarmMachine(AlarmConfig(AlarmRules(rise_points=20, rise_within_min=1, enabled=("rise",))))
    assert feed(m, [10, 15, 20, 25, 30], step=10) == []  # +20 is not more than 20
    ev = m.update("s", 50.0, 31, "ok")
    assert [(e.kind, e.transition) for e in ev] == [("rise", "raised")] and ev[0].value == pytest.approx(21)
    # 70 s later the low point has left the 1 min window: no rise any more
    ev = feed(m, [31] * 8, t0=60, step=10)
    assert [(e.kind, e.transition) for e in ev] == [("rise", "cleared")]


def test_stale_raised_and_cleared_by_data_age():
    m = AlarmMachine(AlarmConfig(AlarmRules(stale_s=30)))
    assert m.check_stale("s", 100.0, 75.0) == []
    ev = m.check_stale("s", 100.0, 65.0)
    assert [(e.kind, e.transition) for e in ev] == [("stale", "raised")] and ev[0].value == 35
    assert m.check_stale("s", 101.0, 65.0) == []  # still on, no new event
    assert [e.transition for e in m.check_stale("s", 102.0, 101.0)] == ["cleared"]
    assert m.check_stale("s", 102.0, math.nan) == []  # never saw data: nothing to say


def test_acknowledge_then_silence_then_raise_again():
    rules = AlarmRules(level=50, level_for_s=0, hysteresis=0, silence_s=100, enabled=("level",))
    m = AlarmMachine(AlarmConfig(rules))
    (raised,) = m.update("s", 0.0, 60, "ok")
    ack = m.acknowledge("s", raised.alarm_id, 1.0, by="nurse")
    assert ack is not None and ack.transition == "acknowledged" and ack.by == "nurse"
    assert m.acknowledge("s", raised.alarm_id, 2.0) is None  # only a raised alarm can be acknowledged
    assert m.acknowledge("s", 999, 2.0) is None
    assert [a.state for a in m.active("s")] == ["acknowledged"]
    assert [e.transition for e in m.update("s", 3.0, 40, "ok")] == ["cleared"]
    assert m.update("s", 50.0, 60, "ok") == []  # silenced until 101
    ev = m.update("s", 102.0, 60, "ok")
    assert [e.transition for e in ev] == ["raised"] and ev[0].alarm_id != raised.alarm_id


def test_per_subject_rules_and_config_files(tmp_path):
    toml = tmp_path / "alarms.toml"
    toml.write_text('[default]\nlevel = 60\nlevel_for_s = 0\n[subjects."bed 3"]\nlevel = 90\nenabled = ["level"]\n')
    config = load_alarm_config(toml)
    assert config.rules("other").level == 60 and config.rules("bed 3").level == 90
    assert config.rules("bed 3").level_for_s == 0  # inherits the file's defaults
    m = AlarmMachine(config)
    assert len(m.update("other", 0.0, 70, "ok")) == 1 and m.update("bed 3", 0.0, 70, "ok") == []
    js = tmp_path / "alarms.json"
    js.write_text('{"default": {"stale_s": 5}}')
    assert load_alarm_config(js).rules("x").stale_s == 5
    assert AlarmConfig.from_dict(config.to_dict()).rules("bed 3") == config.rules("bed 3")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"default": {"levle": 3}}', "unknown key"),
        ('{"default": {"level": -1}}', "must not be negative"),
        ('{"default": {"level": "high"}}', "finite number"),
        ('{"default": {"enabled": ["loud"]}}', "unknown alarm rule"),
        ('{"rules": {}}', "unknown section"),
        ("{not json", "not valid"),
    ],
)
def test_bad_config_says_why(tmp_path, text, message):
    path = tmp_path / "a.json"
    path.write_text(text)
    with pytest.raises(AlarmConfigError, match=message):
        load_alarm_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(AlarmConfigError, match="cannot read alarm config"):
        load_alarm_config(tmp_path / "nope.toml")


def test_forget_drops_a_released_subject_but_never_an_active_alarm():
    """Issue 13: sources release subjects (idle, or invented ids evicted from probation);
    their alarm state goes with them unless an alarm is still raised."""
    m = AlarmMachine(AlarmConfig(AlarmRules(level=70, level_for_s=0, stale_s=5, enabled=("level", "stale"))))
    assert m.check_stale("fake-1", 1.0, 0.5) == []  # fresh data: state created, nothing raised
    assert m.forget("fake-1") and not m.forget("fake-1")
    feed(m, [80, 81], subject="bed-1")
    assert [a.kind for a in m.active("bed-1")] == ["level"]
    assert not m.forget("bed-1") and [a.kind for a in m.active("bed-1")] == ["level"]
