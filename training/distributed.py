"""Multi-process training with ``torchrun`` (DistributedDataParallel).

``torchrun --nproc-per-node N -m monitor.cli pretrain ...`` (or ``painmon pretrain`` under
``torchrun``) sets ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``; this module turns that into a
process group (gloo on CPU, NCCL on CUDA) and hands each rank its shard of the data. On
one process everything degrades to plain single-process training.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a torchrun job (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group described by torchrun's environment (no-op when absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    info = DistInfo(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    log.info("distributed training: rank %d of %d (%s)", info.rank, info.world_size, dist.get_backend())
    return info


def shutdown_distributed() -> None:
    """Leave the process group (after a barrier, so no rank exits mid all-reduce)."""
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def shard(order: np.ndarray, info: DistInfo, batch: int) -> np.ndarray:
    """This rank's share of a (globally identical) shuffled order, equal length on every rank.

    Every rank must run the same number of steps or the gradient all-reduce deadlocks, so
    the order is trimmed to a multiple of ``world_size * batch`` (at least one step each).
    """
    per_step = info.world_size * batch
    n = max(per_step, (len(order) // per_step) * per_step)
    order = np.resize(order, n)
    return order[info.rank :: info.world_size]


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-1 over every parameter and buffer: equal digests == bit-identical weights."""
    h = hashlib.sha1()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
