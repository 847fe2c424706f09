"""A model whose output is not finite is refused at load, in one line."""

import subprocess
import sys

import pytest
import torch
from helpers import REPO_ROOT

from core.checkpoint import ModelLoadError
from core.errors import PainMonError
from core.paths import default_model_path
from monitor.engine import load_estimator


def _damaged(tmp_path, name: str, value: float):
    blob = torch.load(default_model_path(), weights_only=True)
    last = [k for k in blob["head"] if k.endswith("weight")][-1]
    # float32: the bundled heads are stored in float16, which cannot hold an overflowing value
    blob["head"][last] = torch.full_like(blob["head"][last], value, dtype=torch.float32)
    path = tmp_path / name
    torch.save(blob, path)
    return path


def test_a_head_with_nan_weights_is_refused_before_it_runs(tmp_path):
    path = _damaged(tmp_path, "nan.pt", float("nan"))
    with pytest.raises(ModelLoadError, match="not finite") as info:
        load_estimator(path)
    assert isinstance(info.value, PainMonError) and "\n" not in str(info.value)


def test_a_model_whose_output_overflows_is_refused_by_the_probe(tmp_path):
    # finite weights, but so large that the logits overflow: only running it shows that
    path = _damaged(tmp_path, "huge.pt", 3e38)
    with pytest.raises(ModelLoadError, match="probe batch"):
        load_estimator(path)


def test_the_command_line_says_it_in_one_line(tmp_path):
    path = _damaged(tmp_path, "nan.pt", float("nan"))
    sample = REPO_ROOT / "assets" / "sessions" / "sample-sim.xdf"
    out = subprocess.run(
        [sys.executable, "-m", "monitor", "replay", str(sample), "--headless", "--speed", "0", "--model", str(path),
         "--csv", str(tmp_path / "scores.csv")],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
    )
    assert out.returncode != 0  # scoring asked for, and no model to score with
    refusal = [line for line in out.stdout.splitlines() if "not finite" in line]
    assert len(refusal) == 1 and "Traceback" not in out.stdout + out.stderr
