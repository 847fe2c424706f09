"""``painmon bench encoder``: summary lines pick the best *faithful* mode; the whole run prints them
last; the GPU part runs only with CUDA."""

from __future__ import annotations

import re

import pytest
import torch

from benchmarks.encoder import Accuracy, Mode, best_lines, main, subjects_per_device

pytestmark = pytest.mark.usefixtures("two_torch_threads")

BEST_FP32 = re.compile(r"^best faithful fp32: (\S+) (\d+\.\d) % of fp32 peak at batch 8$")
BEST = re.compile(r"^best faithful: (\S+) (\d+\.\d\d)x plain at batch 8$")


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def test_summary_lines_skip_unfaithful_modes_and_report_peak_share():
    modes = [Mode("plain", _identity), Mode("fast-fp32", _identity), Mode("mixed", _identity, "bf16"),
             Mode("whole-bf16", _identity, "bf16"), Mode("sloppy-fp32", _identity)]
    rates = {("plain", 8): 10.0, ("fast-fp32", 8): 20.0, ("mixed", 8): 30.0, ("whole-bf16", 8): 40.0,
             ("sloppy-fp32", 8): 50.0}
    acc = {"plain": Accuracy(1.0, 1e-5), "fast-fp32": Accuracy(0.9999999, 1e-4), "mixed": Accuracy(0.999995, 1e-2),
           "whole-bf16": Accuracy(0.9, 2.0), "sloppy-fp32": Accuracy(0.99999, 1e-3)}
    fp32_line, best_line = best_lines(modes, rates, acc, peak=100.0, flops=3e9, mid=8)
    # sloppy-fp32 is fast but below the fp32 bar (cos 0.999999); whole-bf16 below the reduced bar
    assert BEST_FP32.match(fp32_line).groups() == ("fast-fp32", "60.0")  # 20 img/s x 3 GFLOP of 100 GFLOP/s
    assert BEST.match(best_line).groups() == ("mixed", "3.00")


def test_subjects_per_device_counts_whole_subjects_at_8_images_per_second():
    assert subjects_per_device(2000.0) == 250
    assert subjects_per_device(7.9) == 0


def test_benchmark_run_ends_with_the_two_summary_lines(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PAINMON_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["--batches", "8", "--reps", "1"]) == 0
    out = capsys.readouterr().out.rstrip().splitlines()
    assert "flags:" in "\n".join(out) and "fp32 matmul peak" in "\n".join(out)
    assert BEST_FP32.match(out[-2]), out[-2]
    assert BEST.match(out[-1]), out[-1]
    table = [line for line in out if line.startswith("| ")]
    assert table[0].startswith("| mode") and any(line.startswith("| plain ") for line in table)
    assert any(line.startswith("| torch-fp32 ") for line in table)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_part_reports_subjects_per_gpu(capsys):
    assert main(["--cuda-only", "--gpu-batches", "64", "--reps", "1"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"batch 64: \S+ \d+ images/s = \d+ subjects per GPU", out)
