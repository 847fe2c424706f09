"""The released-format weights kept by derived encoders (the fast path, the OpenVINO backend).

A derived encoder computes from tensors that are not the released ones (BatchNorm folded into
convolutions, bias tables gathered, graphs converted for another runtime), so it cannot answer
``state_dict()`` from its own parameters. It keeps a CPU copy of the weights it was built from
and answers with those, in the released ``Tiny-BioMoE.pth`` format; loading goes through the
reference module, which checks keys and shapes, and then the encoder rebuilds itself. These are
module-level functions, not a mixin: overriding ``nn.Module.state_dict`` in a mixin placed
before ``nn.Module`` clashed with torch's signatures under mypy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import _IncompatibleKeys

from core.encoder.model import TinyBioMoE

Backbone = dict[str, torch.Tensor]
"""Released-format state dict on the CPU: key -> tensor."""


def snapshot_backbone(reference: nn.Module) -> Backbone:
    """A detached CPU copy of ``reference``'s released-format weights (the reference may later change
    or move; the copy is what the derived encoder was built from)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in reference.state_dict().items()}


def copy_backbone(backbone: Backbone) -> Backbone:
    """Copies of the kept weights: a caller editing the result must not change what the encoder
    reports it was built from."""
    return {k: v.clone() for k, v in backbone.items()}


def released_state_dict(backbone: Backbone, *args: Any, destination: dict | None = None, prefix: str = "",
                        keep_vars: bool = False) -> dict:
    """``nn.Module.state_dict`` answered from ``backbone``: the same call forms (``destination``,
    ``prefix``; positional ones in torch's order), released-format keys, copied tensors.
    ``keep_vars`` has nothing to keep: the derived encoder's parameters are not these tensors."""
    if args:  # torch's deprecated positional form: (destination, prefix, keep_vars)
        destination = args[0] if destination is None else destination
        prefix = str(args[1]) if len(args) > 1 and not prefix else prefix
    out = destination if destination is not None else {}
    for k, v in backbone.items():
        out[prefix + k] = v.clone()
    return out


def reference_from_state_dict(state_dict: Mapping[str, Any], strict: bool = True) -> tuple[TinyBioMoE,
                                                                                            _IncompatibleKeys]:
    """A fresh reference module holding ``state_dict`` (released format), with torch's report of
    missing/unexpected keys; the reference checks keys and shapes before anything is rebuilt, so a
    bad state dict leaves the derived encoder as it was."""
    ref = TinyBioMoE()
    result = ref.load_state_dict(state_dict, strict=strict)
    return ref, result


__all__ = ["Backbone", "copy_backbone", "reference_from_state_dict", "released_state_dict", "snapshot_backbone"]
