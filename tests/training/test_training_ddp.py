"""Encoder pretraining under torchrun: 2 CPU processes (gloo) end with identical weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch

from training.distributed import DistInfo, shard


def test_shards_are_disjoint_and_equal_length():
    order = torch.randperm(23, generator=torch.Generator().manual_seed(0)).numpy()
    parts = [shard(order, DistInfo(r, 3), batch=2) for r in range(3)]
    assert len({len(p) for p in parts}) == 1 and len(parts[0]) % 2 == 0
    flat = [int(i) for p in parts for i in p]
    assert len(set(flat)) == len(flat) <= 23


def test_two_process_pretraining_gives_identical_weights(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "monitor.cli", "pretrain", "--out", str(out), "--subjects", "1", "--duration", "20",
           "--stride", "10", "--representations", "waveform", "--batch", "1", "--max-steps", "2",
           "--threads", "1", "--quiet", "--lr", "1e-3"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    d0 = (out / "weights-rank0.sha1").read_text().strip()
    d1 = (out / "weights-rank1.sha1").read_text().strip()
    assert d0 == d1 and len(d0) == 40
    meta = json.loads((out / "pretrain.json").read_text())
    assert meta["steps"] == 2 and meta["world_size"] == 2 and meta["images"] == 4
    # the saved encoder is loadable, and training really changed it
    from core.encoder.weights import encoder_fingerprint
    from training.encoders import init_state_dict, read_state_dict

    sd, desc = read_state_dict(out / "encoder.pt")
    assert "pretrained by `painmon pretrain`" in desc
    assert encoder_fingerprint(sd) != encoder_fingerprint(init_state_dict(0))
