"""Issue 13, finding 7: damaged XDF files (real files from ../shared/data/xdf and the bundled
sample session, truncated, bit-flipped, with bad lengths) are read as far as they are
readable or refused with one line; nothing hangs, nothing leaks a pyxdf traceback."""

from __future__ import annotations

import logging
import os
import random
import re
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO_ROOT

from devices.replay import ReplayPlayer
from devices.xdf import SessionLoadError, load_session
from devices.xdf._check import check_chunks

SAMPLE = REPO_ROOT / "assets" / "sessions" / "sample-sim.xdf"
SEED = 13
PER_FILE_S = 30.0


def _damaged(data: bytes, kind: str, rng: random.Random) -> bytes:
    b = bytearray(data)
    if kind == "truncated":
        return bytes(b[: rng.randrange(5, len(b))])
    if kind == "bit flips":
        for _ in range(rng.randint(1, 8)):
            i = rng.randrange(4, len(b))
            b[i] ^= 1 << rng.randrange(8)
        return bytes(b)
    # bad lengths: a length-width byte and an 8-byte length overwritten somewhere
    good = check_chunks(data).good
    start, _ = good[rng.randrange(len(good))]
    b[start] = rng.choice([0, 2, 4, 8, 0x7F])
    start, _ = good[rng.randrange(len(good))]
    b[start : start + 9] = b"\x08" + struct.pack("<Q", rng.choice([2**63, 2**40, len(b) * 4]))
    return bytes(b)


def corpus(xdf_dir: Path, out: Path, per_file: int = 3) -> list[Path]:
    """A small fixed-seed corpus: ``per_file`` files of each kind of damage per source."""
    rng = random.Random(SEED)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    sources = [xdf_dir / "minimal.xdf", xdf_dir / "clock_resets.xdf", xdf_dir / "empty_streams.xdf", SAMPLE]
    for src in sources:
        data = src.read_bytes()
        for kind in ("truncated", "bit flips", "bad lengths"):
            for k in range(per_file):
                path = out / f"{src.stem}-{kind.replace(' ', '_')}-{k}.xdf"
                path.write_bytes(_damaged(data, kind, rng))
                files.append(path)
    return files


class _Sink:
    def __init__(self) -> None:
        self.samples = 0

    def deliver(self, index, stream, lo, hi, timestamps) -> None:
        self.samples += hi - lo


def test_every_damaged_file_is_read_as_far_as_readable_or_refused_in_one_line(xdf_dir, tmp_path, caplog):
    files = corpus(xdf_dir, tmp_path / "fuzz")
    outcomes = {"replayed": 0, "refused": 0}
    for path in files:
        caplog.clear()
        started = time.monotonic()
        with caplog.at_level(logging.DEBUG):
            try:
                session = load_session(path)
            except SessionLoadError as exc:
                text = str(exc)
                assert "\n" not in text and text.startswith(str(path)), text
                assert "MemoryError: " not in text and "KeyError: " not in text, text
                outcomes["refused"] += 1
                continue
            finally:
                assert not any(r.exc_info for r in caplog.records), (path, caplog.text)
                assert "Traceback" not in caplog.text, path
            # what is readable replays to its end, as fast as possible, within the budget
            sink = _Sink()
            player = ReplayPlayer(session, sink, speed=0)
            player.start()
            finished = player.wait(PER_FILE_S - (time.monotonic() - started))
            player.stop()
        assert finished and player.error is None, (path, session.duration)
        assert sink.samples == sum(s.n_samples for s in session.replayable)
        assert time.monotonic() - started < PER_FILE_S, path
        outcomes["replayed"] += 1
    assert outcomes["replayed"] and outcomes["refused"], outcomes  # the corpus exercises both


def _flip_first_timestamp(data: bytes, bit: int) -> bytes:
    """Flip one bit of the first sample timestamp of the first sample chunk."""
    b = bytearray(data)
    for start, _end in check_chunks(data).good:
        width = b[start]
        body = start + 1 + {1: 1, 4: 4, 8: 8}[width]
        if struct.unpack_from("<H", b, body)[0] != 3:
            continue
        pos = body + 2 + 4
        pos += 1 + {1: 1, 4: 4, 8: 8}[b[pos]]  # the sample count
        assert b[pos] == 8  # PainMon stamps every sample
        b[pos + 1 + bit // 8] ^= 1 << (bit % 8)
        return bytes(b)
    raise AssertionError("no sample chunk")


def test_one_flipped_timestamp_bit_does_not_make_an_endless_session(tmp_path):
    path = tmp_path / "flipped.xdf"
    path.write_bytes(_flip_first_timestamp(SAMPLE.read_bytes(), bit=59))
    session = load_session(path)
    original = load_session(SAMPLE)
    assert session.duration == pytest.approx(original.duration, abs=1.0)
    assert sum(s.n_samples for s in session.replayable) == sum(s.n_samples for s in original.replayable) - 1


def test_a_stream_decades_away_is_left_out(tmp_path, caplog):
    from devices.xdf import StreamInfo, XDFWriter

    path = tmp_path / "centuries.xdf"
    writer = XDFWriter(path)
    writer.add_stream(1, StreamInfo(name="a EDA", type="EDA", channel_count=1, nominal_srate=4.0,
                                         channel_format="double64"))
    writer.write_samples(1, np.zeros((4, 1)), np.arange(4) / 4.0)
    writer.add_stream(2, StreamInfo(name="b EDA", type="EDA", channel_count=1, nominal_srate=4.0,
                                         channel_format="double64"))
    writer.write_samples(2, np.zeros((4, 1)), 1e9 + np.arange(4) / 4.0)
    writer.close()
    session = load_session(path)
    assert [s.spec.name for s in session.streams] == ["a EDA"] and session.duration < 1.0
    assert "'b EDA' lies" in caplog.text and "b EDA" in session.skipped


def _replay_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, float]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", *args], cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=120, env={**os.environ, **(env or {})},
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started


def test_replay_cli_ends_with_one_line_for_a_file_no_model_can_use(xdf_dir, small_model_path):
    rc, out, _ = _replay_cli(str(xdf_dir / "clock_resets.xdf"), "--headless", "--speed", "0",
                             "--model", str(small_model_path), "--device", "cpu", "--threads", "1")
    assert rc != 0, out
    assert out.strip().splitlines()[-1].startswith("painmon replay: no stream of clock_resets.xdf is usable")
    assert "Traceback" not in out


def test_replay_cli_on_damaged_files(xdf_dir, tmp_path):
    """A few corpus files through the command (no usable bundled model, so no estimates:
    the replay itself is on trial)."""
    files = corpus(xdf_dir, tmp_path / "fuzz", per_file=1)[::2]
    for path in files:
        rc, out, took = _replay_cli(str(path), "--headless", "--speed", "0",
                                    env={"PAINMON_MODEL": str(tmp_path / "none.pt")})
        assert took < PER_FILE_S + 15, (path, took)  # + interpreter start-up on a shared machine
        assert "Traceback" not in out and "MemoryError: " not in out and "KeyError: " not in out, out
        if rc != 0:
            errors = [line for line in out.splitlines() if line.startswith("painmon replay:")]
            assert len(errors) == 1, out
        else:  # replayed to the end: the last progress line's position is the duration
            assert re.search(r"\s([\d.]+) / \1 s:", out), out


@pytest.fixture(scope="module")
def small_model_path(tmp_path_factory) -> Path:
    """A real PainMon model file (2 s windows over EDA and BVP; fresh weights)."""
    import torch

    from core.checkpoint import ModelMetadata, save_model
    from core.encoder import TinyBioMoE
    from core.fusion import FusionHead

    torch.manual_seed(0)
    head = FusionHead(("EDA", "BVP"), ("waveform",))
    meta = ModelMetadata(name="replay-test", modalities=["EDA", "BVP"], representations=["waveform"], window_s=2.0)
    path = tmp_path_factory.mktemp("model") / "m.pt"
    return save_model(path, head, meta, encoder_state_dict=TinyBioMoE().state_dict())
