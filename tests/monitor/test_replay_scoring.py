"""Offline scoring (``painmon replay FILE --headless --speed 0 --csv OUT.csv``) of the
shapes that used to stall fast replay for good after ~14 s of data, through the real CLI,
the bundled model and real XDF files written by devices.xdf.XDFWriter."""

import csv
import datetime as dt
import math
import subprocess
import sys

import pytest
from helpers import REPO_ROOT

from core.estimate import Estimate
from core.wire import CSV_COLUMNS
from monitor.estimate_csv import csv_row

sys.path.insert(0, str(REPO_ROOT / "tests" / "monitor"))
from replay_files import heartpy_ppg, write_ecg_only, write_heartpy_ppg, write_wristband_with_ecg  # noqa: E402


def replay_csv(path, out, timeout=600):
    return subprocess.run(
        [sys.executable, "-m", "monitor", "replay", str(path), "--headless", "--speed", "0", "--csv", str(out)],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=timeout,
    )


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        return header, [dict(zip(header, row, strict=True)) for row in reader]


def test_real_ppg_with_duplicate_timestamps_is_scored_to_the_end(tmp_path):
    t, _ = heartpy_ppg()
    dup = (t[1:] == t[:-1]).mean()
    assert 0.3 < dup < 0.4  # the recording's own clock: a third of its timestamps repeat
    path = write_heartpy_ppg(tmp_path / "ppg.xdf", seconds=45.0)
    out = tmp_path / "ppg.csv"
    done = replay_csv(path, out)
    assert done.returncode == 0, done.stdout + done.stderr
    header, rows = read_rows(out)
    assert tuple(header) == CSV_COLUMNS
    t_s = [float(r["t_s"]) for r in rows]
    assert len(rows) >= 30 and t_s[-1] > 40.0  # past the old ~14 s, to the end of the data
    assert t_s == sorted(t_s)
    assert {r["state"] for r in rows} <= {"ok", "low_quality", "uncertain", "calibrating"}
    assert all(r["missing"] for r in rows)  # only BVP: the others are named missing
    assert "scored" in done.stdout and "%" in done.stdout  # progress lines


def test_wristband_beside_unmodelled_ecg_with_offsets_and_markers_is_scored(tmp_path):
    path = write_wristband_with_ecg(tmp_path / "wrist.xdf", seconds=45.0)
    out = tmp_path / "wrist.csv"
    done = replay_csv(path, out)
    assert done.returncode == 0, done.stdout + done.stderr
    header, rows = read_rows(out)
    assert tuple(header) == CSV_COLUMNS
    assert len(rows) >= 30 and float(rows[-1]["t_s"]) > 40.0
    for r in rows:
        assert "nan" not in ",".join(r.values()).lower()
        # the file header says when it was recorded: every row has an ISO 8601 UTC time
        when = dt.datetime.fromisoformat(r["wall_time"].replace("Z", "+00:00"))
        assert when.utcoffset() == dt.timedelta(0)
        assert r["mode"] in ("absolute", "relative") and r["subject"] == "p1"
        if r["state"] != "low_quality":
            assert 0.0 <= float(r["smoothed"]) <= 100.0
            assert sum(float(r[p]) for p in ("p_no", "p_low", "p_high")) == pytest.approx(1.0, abs=1e-3)
    assert all(r["missing"] == "SpO2" for r in rows)  # ECG is not a missing modality, SpO2 is


def test_two_replays_of_a_file_write_identical_estimates(tmp_path):
    # The replay maps the file onto the live clock; a shift by a random fraction of a sample
    # put the 100 Hz resampling grid elsewhere in the recording each time (the index of two
    # runs of this command on a 40 s file differed by up to 9 points). A whole-second shift
    # and a grid locked to the stream's samples cut the same windows every time. What may
    # differ is the rounding of a timestamp plus that shift (~1e-12 s), which can flip the
    # last printed digit of a number that sits on a rounding edge: the same rows, numbers
    # equal to their printed precision.
    path = write_wristband_with_ecg(tmp_path / "wrist.xdf", seconds=30.0)
    runs = []
    for run in range(2):
        out = tmp_path / f"run{run}.csv"
        done = replay_csv(path, out)
        assert done.returncode == 0, done.stdout + done.stderr
        runs.append(read_rows(out)[1])
    first, second = runs
    assert len(first) >= 15 and len({r["index"] for r in first}) > 5  # real, varying estimates
    assert len(second) == len(first)
    digits = {"index": 2, "smoothed": 2, "p_no": 4, "p_low": 4, "p_high": 4, "quality": 3}  # as printed
    for a, b in zip(first, second, strict=True):
        assert {k: v for k, v in a.items() if k not in digits} == {k: v for k, v in b.items() if k not in digits}
        for k, n in digits.items():
            assert (a[k] == b[k] == "") or abs(float(a[k]) - float(b[k])) <= 1.01 * 10.0**-n, (k, a, b)


def test_a_file_with_no_stream_the_model_uses_says_so_and_fails(tmp_path):
    path = write_ecg_only(tmp_path / "ecg.xdf")
    done = replay_csv(path, tmp_path / "ecg.csv", timeout=300)
    assert done.returncode != 0
    said = [line for line in done.stdout.splitlines() if "is usable: the model needs" in line]
    assert len(said) == 1 and "ECG" in said[0] and "Traceback" not in done.stderr


def test_csv_rows_leave_missing_numbers_empty():
    nan = float("nan")
    stale = Estimate("bed-1", 10.0, nan, (nan, nan, nan), smoothed=nan, valid=False, missing=("EDA", "BVP"),
                     state="stale", mode="relative")
    row = dict(zip(CSV_COLUMNS, csv_row(stale, 12.5, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)), strict=True))
    assert row["t_s"] == "12.500" and row["wall_time"] == "2026-01-02T03:04:17.500Z"
    assert row["state"] == "stale" and row["mode"] == "relative" and row["missing"] == "EDA;BVP"
    for name in ("index", "smoothed", "p_no", "p_low", "p_high", "quality"):
        assert row[name] == ""
    ok = Estimate("bed-1", 10.0, 42.0, (0.5, 0.3, 0.2), smoothed=40.0, quality={"EDA": 1.0, "BVP": 0.5})
    row = dict(zip(CSV_COLUMNS, csv_row(ok, 3.0, None), strict=True))
    assert row["wall_time"] == "" and row["index"] == "42.00" and row["quality"] == "0.750"
    assert not any(math.isnan(float(v)) for k, v in row.items() if k in ("index", "smoothed", "p_no"))
