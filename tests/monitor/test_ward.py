"""The ward state both the overview tab and the web API draw: sparkline, paging, subjects."""

from __future__ import annotations

import numpy as np

from core.estimate import Estimate
from core.streams import StreamSpec
from monitor.pipeline import Pipeline
from monitor.ward import SPARK_MIN, SPARK_STEP_S, Instance, WardState


def est(subject: str, t: float, headline: float) -> Estimate:
    return Estimate(subject, t, headline, (0.3, 0.3, 0.4), smoothed=headline)


def test_sparkline_keeps_15_minutes_one_point_per_step():
    ward = WardState(instance=Instance("h", 1, "2/3"))
    for i in range(3600):  # an hour at 1 Hz
        ward.on_estimate(est("a", 1000.0 + i, i % 100))
    spark = ward.sparkline("a")
    assert len(spark) == int(SPARK_MIN * 60 / SPARK_STEP_S) + 1
    assert spark[-1] == [4599.0, 99.0]  # the newest estimate is always the last point
    assert spark[0][0] >= 4599.0 - SPARK_MIN * 60
    assert np.all(np.diff([p[0] for p in spark]) > 0)
    assert ward.tile("a")["instance"]["label"] == "h:1 shard 2/3"


def test_replay_jumping_back_starts_the_history_over_and_pages_stay_ordered():
    ward = WardState()
    for t in (10.0, 11.0, 12.0):
        ward.on_estimate(est("a", t, 50.0))
    ward.on_estimate(est("a", 5.0, 20.0))
    assert [e.t_end for e in ward.estimates("a")[0]] == [5.0] and ward.sparkline("a") == [[5.0, 20.0]]
    page, more = ward.estimates("a", since=-1.0, limit=1)
    assert [e.t_end for e in page] == [5.0] and more is False


def test_subjects_with_signals_but_no_estimate_yet_have_tiles():
    pipeline = Pipeline()
    ward = WardState(hub=pipeline.hub, health=pipeline.stream_health)
    pipeline.hub.push(StreamSpec("new", "EDA", nominal_rate=4.0), np.zeros((4, 1), np.float32), np.arange(4.0))
    assert ward.subjects() == ["new"] and "new" in ward
    tile = ward.tile("new")
    assert tile["headline"] is None and tile["state_text"] == "calibrating" and tile["health"] == {"EDA": "lost"}
