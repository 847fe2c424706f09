"""The shared fill rule: deterministic, non-trivial weights for parity checks and benchmarks.

Freshly initialised weights make many layers near-identity (zero biases, unit norms), which would
hide wiring mistakes; this rule (from ``shared/encoder/README.md``) gives every tensor a
distinctive, well-scaled value drawn from one seeded generator, so an embedding computed under it
can be compared element-wise with the reference fixture ``parity_seed0.npz``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from core.encoder.model import TinyBioMoE


def _draw(key: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    last = key.rsplit(".", 1)[-1]
    normal = lambda: rng.standard_normal(size=shape)  # noqa: E731 - drawn lazily, in rule order
    if key == "fcn.1.bias":
        return 0.5 + 0.1 * normal()
    if key == "fcn.1.weight":
        return 0.05 * normal() / np.sqrt(shape[1])
    if last == "running_var":
        return rng.uniform(0.5, 1.5, size=shape)
    if last in ("running_mean", "bias"):
        return 0.1 * normal()
    if last == "weight" and (len(shape) == 1 or key.startswith("ln_")):
        return 1 + 0.1 * normal()
    numel = int(np.prod(shape)) if shape else 1
    return normal() / np.sqrt(max(1, numel / shape[0]))


def fill_state_dict(template: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """A state dict with the template's keys filled by the rule; integer tensors are kept as-is."""
    rng = np.random.default_rng(seed)
    out: dict[str, torch.Tensor] = {}
    for key in sorted(template):
        ref = template[key]
        if not ref.is_floating_point():
            out[key] = ref.clone()
            continue
        out[key] = torch.from_numpy(np.asarray(_draw(key, tuple(ref.shape), rng), dtype=np.float32))
    return {k: out[k] for k in template}


def parity_encoder(seed: int = 0) -> TinyBioMoE:
    """A reference :class:`TinyBioMoE` in eval mode with the fill-rule weights of ``seed``."""
    from core.encoder.model import TinyBioMoE

    model = TinyBioMoE()
    model.load_state_dict(fill_state_dict(model.state_dict(), seed), strict=True)
    return model.eval()
