"""Real-time engine: windows of every subject -> batched inference -> estimates."""

from monitor.engine.engine import Engine, EngineStats
from monitor.engine.queue import LatestPerKeyQueue
from monitor.engine.scheduler import WindowScheduler

__all__ = ["Engine", "EngineStats", "LatestPerKeyQueue", "WindowScheduler"]
