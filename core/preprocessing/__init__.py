"""Streaming preprocessing: per-modality chains, resampling to the working rate, gaps.

Public API: :class:`StreamPreprocessor` (one per stream, stateful across chunks),
:class:`Processed` (its output), :class:`PreprocessStats`, and the chain registry
:data:`CHAINS` / :func:`chain_for` with :class:`ChainSpec` / :class:`FilterSpec`.
"""

from core.preprocessing.chains import CHAINS, ChainSpec, FilterSpec, chain_for
from core.preprocessing.stream import PreprocessStats, Processed, StreamPreprocessor

__all__ = [
    "CHAINS",
    "ChainSpec",
    "FilterSpec",
    "chain_for",
    "PreprocessStats",
    "Processed",
    "StreamPreprocessor",
]
