"""Streams that declare what PainMon will not allocate for, on real LSL outlets (issue 13).

A header's rate and channel count size liblsl's inlet queue and our pulls before a sample
arrives (an inlet of a 1e6 Hz outlet costs ~2 GB), a tiny rate stretches gap and silence
limits towards infinity, and text samples for a biosignal cannot be a signal. Each such
stream is refused with one log line naming it and why; a good stream of the same subject
is followed all along. The limits are those the MQTT source applies (one definition).
"""

from __future__ import annotations

import logging
import time
import uuid

import numpy as np
import pylsl
import pytest
from helpers import wait_until

from core.buffers import BufferHub
from core.limits import BAD_FORMAT, BAD_RATE, MAX_RATE_HZ, TOO_MANY_CHANNELS, DeclarationError
from core.modalities import check_declared, parse_rate_ranges
from core.streams import StreamSpec
from devices.lsl import LSLSource, discover, stream_info


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


def _outlet(name: str, type_: str, n_ch: int, rate: float, fmt: int, source_id: str, subject: str,
            label: str | None = None) -> pylsl.StreamOutlet:
    info = pylsl.StreamInfo(name, type_, n_ch, rate, fmt, source_id)
    info.desc().append_child_value("subject", subject)
    if label is not None:
        info.desc().append_child("channels").append_child("channel").append_child_value("label", label)
    return pylsl.StreamOutlet(info)


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:10]


# name -> (type, channels, rate, format, channel label, reason it is refused for)
HOSTILE = {
    "tiny rate": ("EDA", 1, 1e-6, pylsl.cf_float32, None, BAD_RATE),
    "huge rate": ("EDA", 1, 1e6, pylsl.cf_float32, None, BAD_RATE),
    "wide": ("EDA", 100_000, 4.0, pylsl.cf_float32, None, TOO_MANY_CHANNELS),
    "text": ("EDA", 1, 4.0, pylsl.cf_string, None, BAD_FORMAT),
    # the type says nothing; the channel label (read from the full info) says SpO2 (<= 100 Hz)
    "labelled": ("Sensor", 1, 500.0, pylsl.cf_float32, "spo2", BAD_RATE),
}


def test_out_of_bounds_streams_are_refused_and_a_good_stream_of_the_subject_is_followed(tag, caplog):
    subject = f"subj-{tag}"
    good_spec = StreamSpec(subject, "BVP", ("BVP",), 64.0, "a.u.", f"{tag} good BVP", f"test:{tag}:BVP")
    good = pylsl.StreamOutlet(stream_info(good_spec))
    hostile = {
        what: _outlet(f"{tag} {what}", type_, n_ch, rate, fmt, f"test:{tag}:{what}", subject, label)
        for what, (type_, n_ch, rate, fmt, label, _) in HOSTILE.items()
    }
    predicate = f"contains(source_id, 'test:{tag}:')"

    # the connect dialog's look at the network: listed with the reason, never opened
    found = {s.name: s for s in discover(timeout=1.5, predicate=predicate)}
    assert sorted(found) == sorted([good_spec.name, *(f"{tag} {w}" for w in HOSTILE)])
    assert found[good_spec.name].refused == "" and found[good_spec.name].spec() == good_spec
    for what, (*_, reason) in HOSTILE.items():
        s = found[f"{tag} {what}"]
        assert s.refused.startswith(reason) and s.spec() is None, (what, s.refused)

    caplog.set_level(logging.INFO, logger="devices.lsl")
    hub = BufferHub(seconds=30)
    src = LSLSource(predicate=predicate, resolve_interval=0.2)
    before = _rss_mb()
    src.start(hub)
    try:
        assert src.wait_for_streams(1, timeout=10.0)
        assert wait_until(lambda: len(src.refused) == len(HOSTILE), timeout=10.0), src.refused
        t0 = pylsl.local_clock()
        for k in range(4):  # the good stream keeps delivering while the others are refused
            good.push_chunk((np.sin(np.arange(64) / 5.0) + k).reshape(-1, 1).tolist(),
                            (t0 + k + np.arange(64) / 64.0).tolist())
            time.sleep(0.1)
        assert wait_until(lambda: (b := hub.buffer(subject, "BVP")) is not None and b.total == 256, timeout=5.0)
        time.sleep(1.0)  # several more discovery rounds: a refused stream is not tried again

        reasons = {s.name: s.refused for s in src.refused.values()}
        for what, (*_, reason) in HOSTILE.items():
            assert reasons[f"{tag} {what}"].startswith(reason), reasons
        # one line per stream, naming it and the reason
        lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        for what, (*_, reason) in HOSTILE.items():
            said = [line for line in lines if f"'{tag} {what}'" in line]
            assert len(said) == 1 and reason in said[0], (what, lines)
        assert all("\n" not in line for line in lines)
        # nothing was sized for them: only the good stream has a buffer or a health entry
        assert [s.key for s in hub.specs()] == [(subject, "BVP")]
        assert [(h.spec.name, h.connected) for h in src.health()] == [(good_spec.name, True)]
        assert hub.nbytes() < 1_000_000
        # an inlet of the 1e6 Hz outlet alone would hold ~2 GB (liblsl sizes its queue by the rate)
        assert _rss_mb() - before < 150, f"{_rss_mb() - before:.0f} MB more while following the streams"
        assert f"{len(HOSTILE)} refused" in src.describe()
    finally:
        src.stop()
    del hostile, good


def test_declaration_limits_are_one_definition_for_every_source():
    check_declared("EDA", 4.0, 1)
    check_declared("BVP", 0.0, 1, irregular_ok=True)  # LSL's irregular rate
    check_declared("Markers", 0.0, 1)
    cases = [
        (("EDA", 1e-6, 1), BAD_RATE, "EDA at 1e-06 Hz outside the plausible 1-1000 Hz"),
        (("EDA", 4.0, 100_000), TOO_MANY_CHANNELS, "100000 EDA channels > 8"),
        (("EDA", 0.0, 1), BAD_RATE, "EDA declares no rate (irregular)"),
        ((None, 2 * MAX_RATE_HZ, 1), BAD_RATE, "stream at 20000 Hz outside the plausible 0.1-10000 Hz"),
        (("Markers", 1e6, 1), BAD_RATE, "Markers at 1e+06 Hz outside the plausible 0.1-10000 Hz"),
        ((None, 4.0, 0), BAD_FORMAT, "stream declares 0 channels"),
        (("EDA", float("nan"), 1), BAD_RATE, "EDA at nan Hz is not a rate"),
    ]
    for args, reason, detail in cases:
        with pytest.raises(DeclarationError) as err:
            check_declared(*args)
        assert (err.value.reason, err.value.detail) == (reason, detail)
    # a site may widen a modality's range, but not beyond what every buffer is sized for
    assert check_declared("EDA", 2000.0, 1, rate_ranges=parse_rate_ranges("EDA=0.5-2000")) is None
    with pytest.raises(ValueError, match="above the 10000 Hz"):
        parse_rate_ranges("EDA=1-1000000")


def test_uids_remembered_by_the_source_stay_bounded_however_often_outlets_restart():
    from devices.lsl._source import MAX_KNOWN_UIDS, _remember

    known: dict[str, None] = {}
    for i in range(3 * MAX_KNOWN_UIDS):  # a hostile outlet restarting: a new uid every time
        _remember(known, f"uid-{i}", None)
    assert len(known) == MAX_KNOWN_UIDS and f"uid-{3 * MAX_KNOWN_UIDS - 1}" in known and "uid-0" not in known
    _remember(known, f"uid-{2 * MAX_KNOWN_UIDS}", None)  # seen again: now the newest
    assert next(reversed(known)) == f"uid-{2 * MAX_KNOWN_UIDS}"
