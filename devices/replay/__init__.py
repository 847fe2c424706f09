"""Replay a recorded session as if it were live: into the pipeline, or as LSL outlets.

What this package offers:

* :class:`ReplaySource` — a :class:`devices.source.Source` feeding a session's streams into a
  :class:`core.buffers.BufferHub`, with the playback controls of
  :class:`devices.source.PlaybackControls` (pause, resume, seek, speed, loop, ...).
* :class:`LSLRepublisher` — the same pacing onto LSL outlets (same name, type, channels and
  description), so other LSL tools can consume a recording as if it were live.
* :class:`ReplayPlayer` and :class:`ReplaySink` — the pacing engine and what it delivers to,
  for a front-end of your own;
* :data:`SHIFT_QUANTUM_S` — replayed timestamps are the file's, shifted onto the live clock
  by a whole multiple of this (1 s), so every replay of a file gives the same estimates.

Sessions are read by :func:`devices.xdf.load_session`; both classes also take a path.
"""

from devices.replay._player import SHIFT_QUANTUM_S, ReplayPlayer, ReplaySink
from devices.replay._republisher import LSLRepublisher
from devices.replay._source import ReplaySource

__all__ = ["SHIFT_QUANTUM_S", "LSLRepublisher", "ReplayPlayer", "ReplaySink", "ReplaySource"]
