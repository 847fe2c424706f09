"""Mapping a sender's clock onto PainMon's shared clock (:func:`core.clock.now`).

An MQTT sender stamps ``t0`` on *its* clock (often Unix time, sometimes its own uptime).
For every message we observe ``offset_obs = local receive time - sender time of its last
sample``. That equals the true clock offset plus the network/broker delay, and the delay is
never negative, so — as NTP does with its lowest-delay sample — the smallest observation over
the recent past (``window_s`` of sender time) is the best offset estimate.

The offset actually *applied* only follows that estimate slowly (at most ``slew`` seconds
per second of sender time, 0.5 % by default), so timestamps of consecutive messages stay
continuous: a jittery network never makes samples jump back and forth. Only when the
applied offset would put samples more than ``reset_s`` into the future (the sender's clock
jumped, or it restarted with another epoch) is it re-anchored at once.
"""

from __future__ import annotations

from collections import deque

DEFAULT_WINDOW_S = 30.0
DEFAULT_SLEW = 0.005
DEFAULT_RESET_S = 2.0


class SenderClock:
    """Offset estimator of one stream (sender clock -> local clock)."""

    def __init__(
        self,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        slew: float = DEFAULT_SLEW,
        reset_s: float = DEFAULT_RESET_S,
        trusted: bool = False,
    ):
        self.window_s = window_s
        self.slew = slew
        self.reset_s = reset_s
        self.trusted = trusted
        """True: the sender already stamps on our clock (same machine); the offset stays 0."""
        self.offset: float | None = 0.0 if trusted else None
        self.reanchors = 0
        self._obs: deque[tuple[float, float]] = deque()
        self._last_sender: float | None = None

    def reset(self) -> None:
        """Forget everything (the sender restarted); the next observation anchors afresh."""
        if not self.trusted:
            self.offset = None
        self._obs.clear()
        self._last_sender = None

    def observe(self, sender_time: float, received: float) -> tuple[float, float]:
        """Record one message (sender time of its last sample, local receive time).

        Returns ``(offset_before, offset_after)``: the caller ramps from the one to the other
        across the message's samples so no two consecutive samples see a step.
        """
        if self.trusted:
            return 0.0, 0.0
        obs = received - sender_time
        if self.offset is None or obs < self.offset - self.reset_s:
            if self.offset is not None:
                self.reanchors += 1
            self._obs.clear()
            self._obs.append((sender_time, obs))
            self.offset = obs
            self._last_sender = sender_time
            return obs, obs
        self._obs.append((sender_time, obs))
        horizon = sender_time - self.window_s
        while len(self._obs) > 1 and self._obs[0][0] < horizon:
            self._obs.popleft()
        target = min(o for _, o in self._obs)
        elapsed = 0.0 if self._last_sender is None else max(0.0, sender_time - self._last_sender)
        self._last_sender = max(sender_time, self._last_sender or sender_time)
        step = self.slew * elapsed
        before = self.offset
        self.offset = before + min(step, max(-step, target - before))
        return before, self.offset
