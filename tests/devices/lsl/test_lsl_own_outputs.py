"""PainMon's own LSL outputs are not signals: a ``painmon monitor --lsl`` (or a second
``serve --lsl``) on the network of a ``painmon serve`` must not ingest the serve's estimate,
alarm and self-report streams. The outputs are made by the project's own publishers
(:class:`monitor.outputs.LSLEstimateOutlets`, :class:`monitor.alarms.LSLAlarmOutlets`,
:class:`monitor.self_report.SelfReportChannel`) next to a real wearable stream; each test
tags its streams with a fresh subject id and filters on it (other LSL tests may run at the
same time on this machine)."""

from __future__ import annotations

import uuid

import numpy as np
import pylsl
import pytest
from helpers import wait_until

from core import clock
from core.alarms import AlarmEvent
from core.buffers import BufferHub
from core.estimate import Estimate
from core.streams import StreamSpec
from core.wire import (
    ALARM_SOURCE_KIND,
    ESTIMATE_SOURCE_KIND,
    OUTPUT_STREAMS,
    SELF_REPORT_SOURCE_KIND,
    alarm_stream_name,
    estimate_stream_name,
    own_output_kind,
    self_report_stream_name,
)
from devices.lsl import LSLSource, discover, stream_info


@pytest.fixture
def outputs():
    """A wearable's EDA stream of subject ``own-<tag>`` and PainMon's three outputs for the
    same subject, each with a sample pushed; yields ``(subject, eda outlet)``."""
    from monitor.alarms import LSLAlarmOutlets
    from monitor.outputs import LSLEstimateOutlets
    from monitor.self_report import SelfReportChannel

    subject = f"own-{uuid.uuid4().hex[:8]}"
    eda = pylsl.StreamOutlet(stream_info(StreamSpec(subject, "EDA", ("EDA",), 32.0, "µS", f"{subject} EDA")))
    estimates = LSLEstimateOutlets(model_name="m")
    alarms = LSLAlarmOutlets(origin="test")
    self_report = SelfReportChannel(subject, BufferHub(seconds=10), steady=False)
    t = clock.now()
    estimates(Estimate(subject, t, 70.0, (0.1, 0.2, 0.7), smoothed=65.0, state="ok"))
    alarms(AlarmEvent(subject=subject, kind="level", transition="raised", alarm_id=1, t=t, value=65.0,
                      threshold=60.0, message="headline 65 >= 60"))
    self_report.set(40.0)
    self_report.sample(t)
    try:
        yield subject, eda
    finally:
        self_report.close()
        alarms.close()
        estimates.close()


def _everything_of(subject: str) -> list[str]:
    """Names of every stream of ``subject`` on the network (what discovery had to choose from)."""
    return sorted(i.name() for i in pylsl.resolve_bypred(f"contains(name, '{subject}')", minimum=4, timeout=5.0))


def test_discovery_leaves_painmon_outputs_out(outputs):
    subject, _eda = outputs
    assert _everything_of(subject) == sorted([f"{subject} EDA", estimate_stream_name(subject),
                                              alarm_stream_name(subject), self_report_stream_name(subject)])
    found = discover(timeout=2.0, predicate=f"contains(name, '{subject}')")
    assert [(s.name, s.modality) for s in found] == [(f"{subject} EDA", "EDA")]


def test_lsl_source_follows_the_wearable_and_never_opens_the_outputs(outputs):
    subject, eda = outputs
    hub = BufferHub(seconds=30)
    src = LSLSource(predicate=f"contains(name, '{subject}')", resolve_interval=0.2)
    src.start(hub)
    try:
        assert src.wait_for_streams(1, timeout=10.0)
        # the three outputs were seen and passed over, by their header alone
        assert wait_until(lambda: len(src.own_outputs) == 3, 10.0, 0.05), src.own_outputs
        assert sorted(src.own_outputs.values()) == sorted([estimate_stream_name(subject), alarm_stream_name(subject),
                                                           self_report_stream_name(subject)])
        t0 = pylsl.local_clock()
        eda.push_chunk(np.full((32, 1), 2.5, np.float32), (t0 + np.arange(32) / 32.0).tolist())
        buf = hub.buffer(subject, "EDA")
        assert buf is not None and wait_until(lambda: len(buf) == 32, 10.0)
        assert hub.subjects() == [subject] and hub.modalities(subject) == ["EDA"]
        assert hub.markers(subject) == []  # the alarm stream's JSON did not become markers
        assert [h.spec.name for h in src.health()] == [f"{subject} EDA"]
        assert src.ignored == {}  # not offered for mapping either
    finally:
        src.stop()


def test_a_relay_that_relabels_an_output_does_not_make_it_a_signal():
    """An alarm stream re-published under its own name but as ``Markers`` (a relay's
    choice of type) would pass for a marker stream: its PainMon name still gives it away."""
    subject = f"own-{uuid.uuid4().hex[:8]}"
    info = pylsl.StreamInfo(alarm_stream_name(subject), "Markers", 1, pylsl.IRREGULAR_RATE, pylsl.cf_string,
                            f"relay-{subject}")
    info.desc().append_child_value("subject", subject)
    relay = pylsl.StreamOutlet(info)
    hub = BufferHub(seconds=30)
    src = LSLSource(predicate=f"contains(name, '{subject}')", resolve_interval=0.2)
    src.start(hub)
    try:
        assert wait_until(lambda: list(src.own_outputs.values()) == [alarm_stream_name(subject)], 10.0, 0.05)
        relay.push_sample(['{"transition":"raised"}'])
        assert not src.wait_for_streams(1, timeout=1.0)
        assert hub.subjects() == []
        assert discover(timeout=1.0, predicate=f"contains(name, '{subject}')") == []
    finally:
        src.stop()
        del relay


def test_output_kinds_by_type_and_by_name():
    kinds = {kind for kind, _, _ in OUTPUT_STREAMS}
    assert kinds == {ESTIMATE_SOURCE_KIND, ALARM_SOURCE_KIND, SELF_REPORT_SOURCE_KIND}
    for kind, stream_type, name_of in OUTPUT_STREAMS:
        assert own_output_kind(stream_type, "anything") == kind
        assert own_output_kind(stream_type.upper(), "anything") == kind
        assert own_output_kind("Markers", name_of("bed-1"), "bed-1") == kind
        assert own_output_kind("Markers", name_of("bed-1"), "bed-2") == ""  # someone else's name
    for stream_type in ("EDA", "BVP", "Markers", "GSR", ""):
        assert own_output_kind(stream_type, "bed-1 EDA", "bed-1") == ""
