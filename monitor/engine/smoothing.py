"""Short and long trends of the pain index, like a clinical monitor's averaged values.

An exponential moving average over *time* (not over estimate count) keeps the meaning of
"10 s trend" when estimates are skipped under load or the hop is changed: the weight of a
new value is ``1 - exp(-dt / tau)`` with ``dt`` the time since the previous estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SHORT_TAU_S = 10.0
LONG_TAU_S = 60.0


@dataclass
class TimeEMA:
    """Exponential moving average of an irregularly sampled value."""

    tau_s: float
    value: float = float("nan")
    t_last: float = float("nan")

    def update(self, t: float, x: float) -> float:
        """Fold in ``x`` observed at time ``t``; NaN inputs leave the average unchanged."""
        if math.isnan(x):
            return self.value
        if math.isnan(self.value) or math.isnan(self.t_last):
            self.value, self.t_last = float(x), float(t)
            return self.value
        dt = t - self.t_last
        if dt <= 0:
            if dt < -self.tau_s:  # time jumped back (replay restarted): start afresh
                self.value, self.t_last = float(x), float(t)
            return self.value  # a duplicate or slightly older window adds nothing
        alpha = 1.0 - math.exp(-dt / self.tau_s)
        self.value += alpha * (float(x) - self.value)
        self.t_last = float(t)
        return self.value


@dataclass
class IndexSmoother:
    """The short and long averages of one subject's pain index."""

    short_tau_s: float = SHORT_TAU_S
    long_tau_s: float = LONG_TAU_S

    def __post_init__(self) -> None:
        self._short = TimeEMA(self.short_tau_s)
        self._long = TimeEMA(self.long_tau_s)

    def update(self, t: float, index: float) -> tuple[float, float]:
        return self._short.update(t, index), self._long.update(t, index)
