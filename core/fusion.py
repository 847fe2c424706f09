"""Fusion head: per-image Tiny-BioMoE embeddings of one window -> no/low/high pain.

A window yields one 192-D embedding per (modality, representation) image. Following the
Tiny-BioMoE line of work the head fuses them in two steps:

* **within** a modality, the representations' embeddings are added (averaged, so the scale
  does not depend on how many representations there are) or concatenated;
* **across** modalities they are added (a masked mean over the modalities present),
  concatenated (an absent modality is replaced by a learnt "missing" vector, so the MLP can
  tell absence from a real signal), or attended (a learnt query token attends over the
  present modalities' tokens; absent ones are masked out of the attention).

An MLP maps the fused vector to three logits. Absent modalities never reach the arithmetic
as NaN or zeros that look like data: every mode consumes the ``mask`` explicitly, and the
head can be trained with *modality dropout* (random masking during training) so it gives
useful estimates for a subject without, say, an SpO2 probe.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from core.estimate import CLASS_NAMES

EMBED_DIM = 192
"""Width of one Tiny-BioMoE embedding."""

WITHIN_MODES = ("add", "concat")
ACROSS_MODES = ("add", "concat", "attention")

PAIN_LEVELS = torch.tensor([0.0, 1.0, 2.0])
"""Numeric pain level of each class in :data:`core.estimate.CLASS_NAMES` order."""


class FusionConfigError(ValueError):
    """A fusion configuration or an input shape that the head cannot work with."""


@dataclass(frozen=True)
class FusionConfig:
    """Everything needed to rebuild a :class:`FusionHead` (stored in checkpoints)."""

    modalities: tuple[str, ...]
    representations: tuple[str, ...]
    within: str = "add"
    across: str = "attention"
    hidden: int = 128
    dropout: float = 0.2
    modality_dropout: float = 0.25
    """Training-time probability of masking each present modality (at least one is kept)."""
    embed_dim: int = EMBED_DIM
    n_classes: int = len(CLASS_NAMES)
    attention_dim: int = 128
    attention_heads: int = 4

    def __post_init__(self) -> None:
        if not self.modalities:
            raise FusionConfigError("a fusion head needs at least one modality")
        if not self.representations:
            raise FusionConfigError("a fusion head needs at least one representation")
        if len(set(self.modalities)) != len(self.modalities):
            raise FusionConfigError(f"duplicate modalities in {list(self.modalities)}")
        if self.within not in WITHIN_MODES:
            raise FusionConfigError(f"within={self.within!r}; choose one of {WITHIN_MODES}")
        if self.across not in ACROSS_MODES:
            raise FusionConfigError(f"across={self.across!r}; choose one of {ACROSS_MODES}")
        if not 0.0 <= self.modality_dropout < 1.0:
            raise FusionConfigError(f"modality_dropout must be in [0, 1), got {self.modality_dropout}")
        if self.attention_dim % self.attention_heads:
            raise FusionConfigError(
                f"attention_dim {self.attention_dim} is not divisible by attention_heads {self.attention_heads}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain-types dict (lists, not tuples) so it survives ``torch.load(weights_only=True)``."""
        d = asdict(self)
        d["modalities"] = list(self.modalities)
        d["representations"] = list(self.representations)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FusionConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise FusionConfigError(f"unknown fusion settings {sorted(unknown)}; known: {sorted(known)}")
        kw = dict(d)
        kw["modalities"] = tuple(kw["modalities"])
        kw["representations"] = tuple(kw["representations"])
        return cls(**kw)


class FusionHead(nn.Module):
    """Embeddings ``(B, M, R, 192)`` + presence mask ``(B, M)`` -> logits ``(B, 3)``."""

    def __init__(
        self,
        modalities: Sequence[str],
        representations: Sequence[str],
        within: str = "add",
        across: str = "attention",
        hidden: int = 128,
        dropout: float = 0.2,
        modality_dropout: float = 0.25,
        **extra: Any,
    ):
        super().__init__()
        cfg = FusionConfig(
            tuple(modalities), tuple(representations), within, across, hidden, dropout,
            modality_dropout, **extra,
        )
        self.config = cfg
        n_mod, n_rep = len(cfg.modalities), len(cfg.representations)
        per_mod = cfg.embed_dim * (n_rep if cfg.within == "concat" else 1)
        self.per_modality_dim = per_mod
        self.norm_in = nn.LayerNorm(per_mod)
        if cfg.across == "add":
            fused = per_mod
        elif cfg.across == "concat":
            fused = per_mod * n_mod
            self.missing = nn.Parameter(torch.zeros(n_mod, per_mod))
        else:
            d = cfg.attention_dim
            self.proj = nn.Linear(per_mod, d)
            self.modality_embed = nn.Parameter(torch.randn(n_mod, d) * 0.02)
            self.query = nn.Parameter(torch.randn(1, 1, d) * 0.02)
            self.attn = nn.MultiheadAttention(d, cfg.attention_heads, dropout=cfg.dropout, batch_first=True)
            fused = d
        self.fused_dim = fused
        self.mlp = nn.Sequential(
            nn.LayerNorm(fused),
            nn.Dropout(cfg.dropout),
            nn.Linear(fused, cfg.hidden),
            nn.GELU(),
            nn.Dropout(cfg.dropout),
            nn.Linear(cfg.hidden, cfg.n_classes),
        )

    @classmethod
    def from_config(cls, config: FusionConfig | Mapping[str, Any]) -> FusionHead:
        cfg = config if isinstance(config, FusionConfig) else FusionConfig.from_dict(config)
        kw = cfg.to_dict()
        return cls(**kw)

    @property
    def modalities(self) -> tuple[str, ...]:
        return self.config.modalities

    @property
    def representations(self) -> tuple[str, ...]:
        return self.config.representations

    def _check(self, emb: Tensor, mask: Tensor | None) -> Tensor:
        cfg = self.config
        expected = (len(cfg.modalities), len(cfg.representations), cfg.embed_dim)
        if emb.ndim != 4 or tuple(emb.shape[1:]) != expected:
            raise FusionConfigError(
                f"embeddings must be (B, {expected[0]}, {expected[1]}, {expected[2]}) for modalities "
                f"{list(cfg.modalities)} x representations {list(cfg.representations)}; got {tuple(emb.shape)}"
            )
        if mask is None:
            return torch.ones(emb.shape[:2], dtype=torch.bool, device=emb.device)
        if tuple(mask.shape) != tuple(emb.shape[:2]):
            raise FusionConfigError(f"mask must be (B, M) = {tuple(emb.shape[:2])}; got {tuple(mask.shape)}")
        return mask.to(device=emb.device, dtype=torch.bool)

    def _drop_modalities(self, mask: Tensor) -> Tensor:
        """Randomly hide present modalities (training only), always keeping one per window."""
        p = self.config.modality_dropout
        if not self.training or p <= 0:
            return mask
        drop = torch.rand(mask.shape, device=mask.device) < p
        kept = mask & ~drop
        # Where everything would vanish, keep one randomly chosen originally-present modality.
        empty = ~kept.any(dim=1) & mask.any(dim=1)
        if empty.any():
            scores = torch.rand(mask.shape, device=mask.device).masked_fill(~mask, -1.0)
            pick = torch.zeros_like(mask)
            pick.scatter_(1, scores.argmax(dim=1, keepdim=True), True)
            kept = torch.where(empty[:, None], pick, kept)
        return kept

    def forward(self, emb: Tensor, mask: Tensor | None = None) -> Tensor:
        """Logits ``(B, n_classes)``; ``mask`` True where the modality is present."""
        mask = self._check(emb, mask)
        mask = self._drop_modalities(mask)
        # Absent modalities may hold NaN/garbage: zero them so nothing leaks into gradients.
        emb = torch.where(mask[:, :, None, None], emb, torch.zeros((), dtype=emb.dtype, device=emb.device))
        if self.config.within == "add":
            x = emb.mean(dim=2)
        else:
            x = emb.flatten(2)
        x = self.norm_in(x)  # (B, M, D)
        across = self.config.across
        if across == "add":
            w = mask.to(x.dtype)[:, :, None]
            fused = (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
        elif across == "concat":
            x = torch.where(mask[:, :, None], x, self.missing[None].to(x.dtype))
            fused = x.flatten(1)
        else:
            tokens = self.proj(x) + self.modality_embed[None]
            query = self.query.expand(x.shape[0], -1, -1)
            keys = torch.cat([query, tokens], dim=1)
            # The query token itself is always a valid key: no all-masked rows, so no NaN.
            pad = torch.cat([torch.zeros_like(mask[:, :1]), ~mask], dim=1)
            out, _ = self.attn(query, keys, keys, key_padding_mask=pad, need_weights=False)
            fused = out[:, 0] + query[:, 0]
        return self.mlp(fused)


def pain_index(probs: Tensor) -> Tensor:
    """Pain index 0-100: the expected pain level under the predicted probabilities.

    With levels no = 0, low = 1, high = 2, ``index = 50 * E[level] = 50 * p_low + 100 *
    p_high``. It is 0 for certain "no pain", 50 for certain "low", 100 for certain "high",
    and moves smoothly as probability shifts between classes, which makes it a usable trend
    line; it is *not* a calibrated clinical scale.
    """
    if probs.ndim != 2 or probs.shape[1] != len(CLASS_NAMES):
        raise FusionConfigError(f"probs must be (B, {len(CLASS_NAMES)}); got {tuple(probs.shape)}")
    levels = PAIN_LEVELS.to(device=probs.device, dtype=probs.dtype)
    return 50.0 * (probs * levels).sum(dim=1)


@torch.no_grad()
def predict(head: FusionHead, emb: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Probabilities ``(B, 3)`` and pain index ``(B,)`` from an eval-mode head (no dropout)."""
    was_training = head.training
    head.eval()
    try:
        probs = torch.softmax(head(emb, mask).float(), dim=1)
    finally:
        head.train(was_training)
    return probs, pain_index(probs)
