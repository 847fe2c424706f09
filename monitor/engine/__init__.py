"""Real-time engine: windows of every subject -> batched inference -> estimates.

Public API: :class:`Engine` (start/stop/add_callback/stats/warmup; takes a ready
estimator), :class:`EngineStats`, :func:`load_estimator` / :class:`ModelOptions` (model
file -> :class:`core.inference.Estimator`), :class:`Shard`
(subject partition for scale-out), subject baselines (:class:`BaselineOptions`,
:class:`BaselineProfiles`, :func:`attach_baselines`; the statistics are
:mod:`core.baseline`'s), :class:`Capacity` (what this machine sustains; the engine's
capacity planning is in :mod:`monitor.engine.capacity`), and the building blocks
:class:`WindowScheduler` and :class:`LatestPerKeyQueue`.
"""

from monitor.engine.baselines import BaselineOptions, BaselineProfiles, attach_baselines
from monitor.engine.capacity import Capacity
from monitor.engine.engine import Engine, EngineStats, default_torch_threads
from monitor.engine.model import LoadedEstimator, ModelNotFoundError, ModelOptions, load_estimator
from monitor.engine.queue import LatestPerKeyQueue
from monitor.engine.scheduler import WindowScheduler
from monitor.engine.sharding import Shard, shard_of

__all__ = [
    "BaselineOptions",
    "BaselineProfiles",
    "Capacity",
    "Engine",
    "EngineStats",
    "LatestPerKeyQueue",
    "LoadedEstimator",
    "ModelNotFoundError",
    "ModelOptions",
    "Shard",
    "WindowScheduler",
    "attach_baselines",
    "default_torch_threads",
    "load_estimator",
    "shard_of",
]
