"""Issue 12 item 9: the command line and the dashboard's dialogs as a new user meets them."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest
from helpers import REPO_ROOT

from core.paths import default_model_path, inside_package, sample_sessions_dir
from monitor.cli import build_parser


def painmon(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "monitor", *args], capture_output=True, text=True,
                          cwd=REPO_ROOT, timeout=timeout)


def subparser(name: str) -> argparse.ArgumentParser:
    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return sub.choices[name]


def test_info_has_a_description_and_describes_a_given_model(tmp_path):
    assert subparser("info").description and "--model" in subparser("info").format_help()
    bundled = painmon("info", "--model", str(default_model_path()))
    assert bundled.returncode == 0 and f"Model: {default_model_path()} (present)" in bundled.stdout
    assert "trained on:" in bundled.stdout
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    bad = painmon("info", "--model", str(text))
    assert bad.returncode == 1
    (line,) = [x for x in bad.stdout.splitlines() if "unusable" in x]
    assert "notes.txt" in line
    missing = painmon("info", "--model", str(tmp_path / "nope.pt"))
    assert missing.returncode == 1 and "(missing)" in missing.stdout


@pytest.mark.parametrize("command", ["train", "pretrain", "record", "info"])
def test_every_option_says_what_it_does(command):
    undocumented = [a.option_strings or a.dest for a in subparser(command)._actions
                    if a.help in (None, "") and a.dest != "help"]
    assert not undocumented


def test_a_failed_train_leaves_no_empty_output_folder(tmp_path):
    out = tmp_path / "runs" / "first"
    done = painmon("train", "--dataset", "xdf", str(tmp_path / "no-such-data"), "--out", str(out), "--quiet")
    assert done.returncode == 2 and "no .xdf files" in done.stdout
    assert not (tmp_path / "runs").exists()  # nor the parent it created
    kept = tmp_path / "mine"
    kept.mkdir()  # a folder the user made: left alone, even empty
    done = painmon("train", "--dataset", "xdf", str(tmp_path / "no-such-data"), "--out", str(kept), "--quiet")
    assert done.returncode == 2 and kept.is_dir()


def test_the_representations_benchmark_says_matplotlib_is_missing(monkeypatch, capsys):
    from benchmarks import representations

    assert representations.speed_up(50.0, float("nan")) == "matplotlib not installed"
    assert representations.speed_up(50.0, 10.0) == "5.0x"
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an install without it gives: ImportError
    assert representations.main(["--rounds", "1", "--repeats", "1", "--batch", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line.startswith("| torch CPU")]
    assert rows and all(line.endswith("| matplotlib not installed |") for line in rows), out
    assert "nan" not in out


def test_open_starts_at_the_samples_and_saving_never_suggests_the_package(tmp_path, monkeypatch):
    from monitor.gui.folders import open_folder, save_folder

    monkeypatch.setenv("PAINMON_RECORDINGS", str(tmp_path / "recordings"))
    assert open_folder("") == str(sample_sessions_dir())
    assert open_folder(str(tmp_path)) == str(tmp_path)  # the folder last used wins
    # after opening the sample session, last_dir is inside the package: saving goes elsewhere
    suggested = save_folder(str(sample_sessions_dir()))
    assert suggested == str(tmp_path / "recordings") and not inside_package(suggested)
    assert (tmp_path / "recordings").is_dir()
    assert save_folder(str(tmp_path)) == str(tmp_path)


def test_the_windows_record_suggestion_is_outside_the_package(window, tmp_path, monkeypatch):
    monkeypatch.setenv("PAINMON_RECORDINGS", str(tmp_path / "rec"))
    window.settings.last_dir = str(sample_sessions_dir())
    assert window._dir() == str(tmp_path / "rec")
    assert not inside_package(window._dir())
