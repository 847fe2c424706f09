"""Alarm rules and their state machine: pure computation, no I/O, no clock of its own.

Three rules per subject (defaults in :class:`AlarmRules`, every one editable per subject in
a config file, :func:`load_alarm_config`, or in the dashboard):

* ``level`` — the headline (:attr:`core.estimate.Estimate.smoothed`) at or above
  ``level`` for at least ``level_for_s`` seconds (cleared once it falls below
  ``level - hysteresis``);
* ``rise`` — the headline rose by more than ``rise_points`` within ``rise_within_min``
  minutes (now minus the lowest headline of that span; cleared when that is no longer so);
* ``stale`` — no sample of any stream of the subject for more than ``stale_s`` seconds.

Each (subject, rule) is one alarm, which goes ``raised`` → ``acknowledged`` (by a person)
→ ``cleared`` (the condition ended; an alarm may clear without being acknowledged).
Acknowledging silences the rule for ``silence_s`` seconds: it is not raised again before
then, even if it clears and its condition returns. ``level`` and ``rise`` are never raised
from an estimate whose state is ``calibrating`` or ``stale`` (the number is not trusted;
their timers restart); ``stale`` is the one alarm about staleness itself.

Every transition is an :class:`AlarmEvent`; the caller (:mod:`monitor.alarms`) turns them
into markers, LSL samples and MQTT messages. Times are the shared clock's seconds
(:mod:`core.clock`), handed in by the caller, so tests drive the machine with any clock.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections import deque
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from core.errors import PainMonError

KINDS: tuple[str, ...] = ("level", "rise", "stale")
"""The alarm rules, in display order."""
TRANSITIONS: tuple[str, ...] = ("raised", "acknowledged", "cleared")
"""What an :class:`AlarmEvent` says happened."""
ACTIVE_STATES: tuple[str, ...] = ("raised", "acknowledged")
"""States of an alarm that is still on (its condition holds)."""
UNTRUSTED_STATES: frozenset[str] = frozenset({"calibrating", "stale"})
"""Estimate states from which ``level`` and ``rise`` are never raised."""


class AlarmConfigError(PainMonError, ValueError):
    """An alarm config file or value that cannot be used (says which and why)."""


@dataclass(frozen=True)
class AlarmRules:
    """One subject's alarm rules. The defaults are the documented ones (README, "Ward")."""

    level: float = 70.0
    """Headline (0-100) at or above which the ``level`` alarm counts."""
    level_for_s: float = 60.0
    """How long the headline must stay at or above ``level`` before it is raised."""
    hysteresis: float = 5.0
    """``level`` clears only below ``level - hysteresis`` (no flapping at the edge)."""
    rise_points: float = 25.0
    """``rise``: more than this many index points ..."""
    rise_within_min: float = 5.0
    """... within this many minutes."""
    stale_s: float = 30.0
    """``stale``: no sample of any of the subject's streams for more than this long."""
    silence_s: float = 600.0
    """After an acknowledgement the rule is not raised again for this long."""
    enabled: tuple[str, ...] = KINDS
    """The rules in use (a subset of :data:`KINDS`)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name == "enabled":
                continue
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise AlarmConfigError(f"alarm rule {f.name} must be a finite number, got {value!r}")
            if value < 0:
                raise AlarmConfigError(f"alarm rule {f.name} must not be negative, got {value!r}")
        unknown = [k for k in self.enabled if k not in KINDS]
        if unknown:
            raise AlarmConfigError(f"unknown alarm rule(s) {unknown}; known: {', '.join(KINDS)}")

    def with_values(self, values: dict[str, Any], where: str = "alarm rules") -> AlarmRules:
        """A copy with ``values`` (e.g. from a config file) applied; unknown keys are an error."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise AlarmConfigError(f"{where}: unknown key(s) {unknown}; known: {', '.join(sorted(names))}")
        clean = dict(values)
        if "enabled" in clean:
            enabled = clean["enabled"]
            if isinstance(enabled, str) or not isinstance(enabled, (list, tuple)):
                raise AlarmConfigError(f"{where}: enabled must be a list of rule names, got {enabled!r}")
            clean["enabled"] = tuple(str(k) for k in enabled)
        try:
            return replace(self, **clean)
        except AlarmConfigError as exc:
            raise AlarmConfigError(f"{where}: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["enabled"] = list(self.enabled)
        return d


@dataclass
class AlarmConfig:
    """Rules for every subject: ``default`` plus per-subject overrides."""

    default: AlarmRules = field(default_factory=AlarmRules)
    subjects: dict[str, AlarmRules] = field(default_factory=dict)

    def rules(self, subject: str) -> AlarmRules:
        return self.subjects.get(subject, self.default)

    def to_dict(self) -> dict[str, Any]:
        return {"default": self.default.to_dict(), "subjects": {s: r.to_dict() for s, r in self.subjects.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "alarm config") -> AlarmConfig:
        """``{"default": {...}, "subjects": {"sim-1": {...}}}``; a subject's keys override
        the defaults, which override the built-in ones."""
        if not isinstance(data, dict):
            raise AlarmConfigError(f"{where}: expected a table/object at the top")
        unknown = sorted(set(data) - {"default", "subjects"})
        if unknown:
            raise AlarmConfigError(f"{where}: unknown section(s) {unknown}; known: default, subjects")
        default = AlarmRules().with_values(_table(data.get("default", {}), f"{where} [default]"), f"{where} [default]")
        subjects: dict[str, AlarmRules] = {}
        for subject, values in _table(data.get("subjects", {}), f"{where} [subjects]").items():
            here = f"{where} [subjects.{subject}]"
            subjects[str(subject)] = default.with_values(_table(values, here), here)
        return cls(default, subjects)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise AlarmConfigError(f"{where}: expected a table/object, got {type(value).__name__}")
    return value


def load_alarm_config(path: str | Path) -> AlarmConfig:
    """Read an alarm config: TOML (``.toml``) or JSON (anything else). Raises
    :class:`AlarmConfigError` with the file name and the reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AlarmConfigError(f"cannot read alarm config {path}: {exc.strerror or exc}") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise AlarmConfigError(f"alarm config {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    return AlarmConfig.from_dict(data, str(path))


@dataclass(frozen=True)
class AlarmEvent:
    """One transition of one alarm. Crosses to markers, LSL, MQTT and the web API."""

    subject: str
    kind: str
    """One of :data:`KINDS`."""
    transition: str
    """One of :data:`TRANSITIONS`."""
    alarm_id: int
    """Identifies the alarm (one raise and what follows it) within this process."""
    t: float
    """Shared-clock seconds of the transition."""
    value: float = math.nan
    """The measured value: the headline (level), the rise in points (rise) or the seconds
    without data (stale); NaN for an acknowledgement."""
    threshold: float = math.nan
    """The rule's threshold that was crossed."""
    message: str = ""
    """One readable sentence (shown on tiles, logs)."""
    by: str = ""
    """Who acknowledged (free text from the user or API client)."""

    @property
    def label(self) -> str:
        """The event marker's label, e.g. ``alarm:level:raised``."""
        return f"alarm:{self.kind}:{self.transition}"


@dataclass
class Alarm:
    """An alarm that is on (raised or acknowledged)."""

    subject: str
    kind: str
    alarm_id: int
    state: str
    raised_t: float
    value: float
    threshold: float
    message: str
    acknowledged_t: float = math.nan
    acknowledged_by: str = ""


@dataclass
class _SubjectState:
    above_since: float = math.nan
    history: deque = field(default_factory=deque)
    """(t, headline) of the last ``rise_within_min`` minutes."""
    active: dict[str, Alarm] = field(default_factory=dict)
    silenced_until: dict[str, float] = field(default_factory=dict)


class AlarmMachine:
    """Every subject's alarms: feed it estimates (:meth:`update`) and the data age
    (:meth:`check_stale`); it returns the transitions. Not thread-safe (the caller locks).

    Args:
        config: the rules (per subject, with defaults).
    """

    def __init__(self, config: AlarmConfig | None = None):
        self.config = config or AlarmConfig()
        self._subjects: dict[str, _SubjectState] = {}
        self._next_id = 1

    def _state(self, subject: str) -> _SubjectState:
        st = self._subjects.get(subject)
        if st is None:
            st = self._subjects[subject] = _SubjectState()
        return st

    def forget(self, subject: str) -> bool:
        """Drop ``subject``'s state unless an alarm of it is still raised or acknowledged (a
        nurse must still see it); True if dropped. Sources release subjects that went quiet
        or never got past probation (a flood of invented ids), so their state must go too."""
        st = self._subjects.get(subject)
        if st is None or st.active:
            return False
        del self._subjects[subject]
        return True

    def set_rules(self, subject: str | None, rules: AlarmRules) -> None:
        """Replace one subject's rules (``None``: the default for all without their own)."""
        if subject is None:
            self.config.default = rules
        else:
            self.config.subjects[subject] = rules

    # --- inputs ------------------------------------------------------------------------
    def update(self, subject: str, t: float, headline: float, state: str) -> list[AlarmEvent]:
        """An estimate of ``subject`` ending at ``t`` with this headline and state."""
        rules = self.config.rules(subject)
        st = self._state(subject)
        events: list[AlarmEvent] = []
        trusted = state not in UNTRUSTED_STATES and math.isfinite(headline)
        # level
        if trusted and headline >= rules.level:
            if math.isnan(st.above_since):
                st.above_since = t
        else:
            st.above_since = math.nan
        if "level" in rules.enabled:
            if trusted and not math.isnan(st.above_since) and t - st.above_since >= rules.level_for_s:
                events += self._raise(
                    st, subject, "level", t, headline, rules.level,
                    f"headline {headline:.0f} ≥ {rules.level:g} for {t - st.above_since:.0f} s", rules,
                )
            elif math.isfinite(headline) and headline < rules.level - rules.hysteresis:
                events += self._clear(st, subject, "level", t, headline, rules.level)
        # rise
        span = rules.rise_within_min * 60.0
        while st.history and st.history[0][0] < t - span:
            st.history.popleft()
        if trusted:
            st.history.append((t, headline))
        elif state in UNTRUSTED_STATES:
            st.history.clear()  # a rise across a gap in trust is not a rise we saw
        if "rise" in rules.enabled and trusted:
            low = min(h for _, h in st.history)
            rise = headline - low
            if rise > rules.rise_points:
                events += self._raise(
                    st, subject, "rise", t, rise, rules.rise_points,
                    f"headline rose {rise:.0f} points within {rules.rise_within_min:g} min", rules,
                )
            else:
                events += self._clear(st, subject, "rise", t, rise, rules.rise_points)
        return events

    def check_stale(self, subject: str, now: float, last_sample: float) -> list[AlarmEvent]:
        """``subject``'s newest sample (of any stream) is from ``last_sample``; ``now`` is the
        shared clock. Raises or clears ``stale``."""
        rules = self.config.rules(subject)
        if "stale" not in rules.enabled or math.isnan(last_sample):
            return []
        st = self._state(subject)
        age = now - last_sample
        if age > rules.stale_s:
            return self._raise(st, subject, "stale", now, age, rules.stale_s,
                               f"no data for {age:.0f} s", rules)
        return self._clear(st, subject, "stale", now, age, rules.stale_s)

    def acknowledge(self, subject: str, alarm_id: int, t: float, by: str = "") -> AlarmEvent | None:
        """A person saw alarm ``alarm_id``: it becomes ``acknowledged`` and its rule is
        silenced for ``silence_s``. None when no such alarm is raised (already
        acknowledged, cleared, or unknown)."""
        st = self._subjects.get(subject)
        if st is None:
            return None
        for kind, alarm in st.active.items():
            if alarm.alarm_id != alarm_id:
                continue
            if alarm.state != "raised":
                return None
            alarm.state = "acknowledged"
            alarm.acknowledged_t = t
            alarm.acknowledged_by = by
            st.silenced_until[kind] = t + self.config.rules(subject).silence_s
            return AlarmEvent(subject, kind, "acknowledged", alarm_id, t, math.nan, alarm.threshold,
                              f"{kind} alarm acknowledged" + (f" by {by}" if by else ""), by)
        return None

    # --- reading -----------------------------------------------------------------------
    def active(self, subject: str | None = None) -> list[Alarm]:
        """Alarms that are on, of one subject or all (oldest first)."""
        out = [
            a for s, st in self._subjects.items() if subject is None or s == subject for a in st.active.values()
        ]
        return sorted(out, key=lambda a: (a.raised_t, a.alarm_id))

    def silenced_until(self, subject: str, kind: str) -> float:
        st = self._subjects.get(subject)
        return st.silenced_until.get(kind, -math.inf) if st else -math.inf

    # --- transitions -------------------------------------------------------------------
    def _raise(self, st: _SubjectState, subject: str, kind: str, t: float, value: float, threshold: float,
               message: str, rules: AlarmRules) -> list[AlarmEvent]:
        alarm = st.active.get(kind)
        if alarm is not None:
            alarm.value = value  # still on: keep the latest value for display
            return []
        if t < st.silenced_until.get(kind, -math.inf):
            return []
        alarm_id = self._next_id
        self._next_id += 1
        st.active[kind] = Alarm(subject, kind, alarm_id, "raised", t, value, threshold, message)
        return [AlarmEvent(subject, kind, "raised", alarm_id, t, value, threshold, message)]

    def _clear(self, st: _SubjectState, subject: str, kind: str, t: float, value: float,
               threshold: float) -> list[AlarmEvent]:
        alarm = st.active.pop(kind, None)
        if alarm is None:
            return []
        return [AlarmEvent(subject, kind, "cleared", alarm.alarm_id, t, value, threshold, f"{kind} alarm cleared")]
