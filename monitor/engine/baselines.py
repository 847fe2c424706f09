"""Subject baselines at the engine: saved profiles, options, and the book an estimator uses.

The statistics and the learning rule live in :mod:`core.baseline`; this module adds what
needs files and settings: one small profile file per subject id in the user's data folder
(:class:`BaselineProfiles`) and :class:`BaselineOptions` (what ``--baseline`` and
``--baseline-profiles`` say), turned into a :class:`core.baseline.BaselineBook` on an
estimator by :func:`attach_baselines`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from core.baseline import DEFAULT_BASELINE_S, BaselineBook, BaselineError, BaselineStats
from core.inference import Estimator

log = logging.getLogger(__name__)

PROFILE_MODES = ("off", "save", "load")
"""``off``: no files; ``save`` (default): every baseline learnt is saved in the subject's
profile; ``load``: also start a subject from its saved profile (relative from its first window)."""
PROFILE_SUFFIX = ".baseline"
MAX_PROFILE_BYTES = 1 << 20
"""A profile larger than this is not read (a 4 x 2 x 192 baseline is about 8 kB)."""


def default_profile_dir() -> Path:
    """``$PAINMON_BASELINES``, else ``$XDG_DATA_HOME/painmon/baselines`` (``~/.local/share/...``)."""
    if os.environ.get("PAINMON_BASELINES"):
        return Path(os.environ["PAINMON_BASELINES"])
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "painmon" / "baselines"


def safe_name(subject: str) -> str:
    """A file name for any subject id: readable characters kept, the rest replaced, plus a hash
    of the exact id (so ``a/b`` and ``a_b`` differ, and ``..`` or a 10 kB id stay harmless)."""
    readable = re.sub(r"[^A-Za-z0-9._-]", "_", subject)[:48].lstrip(".") or "subject"
    digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{readable}-{digest}"


class BaselineProfiles:
    """One baseline file per subject id in ``folder`` (text: :meth:`BaselineStats.encode`)."""

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder is not None else default_profile_dir()

    def path_for(self, subject: str) -> Path:
        return self.folder / (safe_name(subject) + PROFILE_SUFFIX)

    def save(self, subject: str, stats: BaselineStats) -> Path:
        """Write ``subject``'s profile atomically (a crash leaves the old one)."""
        path = self.path_for(subject)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(f"{subject}\n{stats.encode()}\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    def load(self, subject: str) -> BaselineStats | None:
        """``subject``'s saved baseline, or None (none saved, or unreadable: logged)."""
        path = self.path_for(subject)
        if not path.is_file():
            return None
        try:
            if path.stat().st_size > MAX_PROFILE_BYTES:
                raise BaselineError(f"{path.stat().st_size} bytes is too large for a baseline")
            who, _, payload = path.read_text(encoding="utf-8").partition("\n")
            if who != subject:
                raise BaselineError(f"it belongs to subject {who!r}")
            return BaselineStats.decode(payload.strip()).with_source("profile")
        except (OSError, UnicodeDecodeError, BaselineError) as exc:
            log.warning("baseline profile %s of %s not used: %s", path, subject, exc)
            return None


@dataclass(frozen=True)
class BaselineOptions:
    """How an engine learns and keeps subject baselines (``--baseline``, ``--baseline-profiles``)."""

    duration_s: float = DEFAULT_BASELINE_S
    """Seconds of good signal learnt automatically; 0 = no automatic baseline (marked
    intervals, "use the last N s" and profiles still work)."""
    profiles: str = "save"
    """One of :data:`PROFILE_MODES`."""
    folder: str | None = None
    """Profile folder (None: :func:`default_profile_dir`)."""

    def __post_init__(self) -> None:
        if self.profiles not in PROFILE_MODES:
            raise ValueError(f"baseline profiles {self.profiles!r}: use one of {', '.join(PROFILE_MODES)}")
        if self.duration_s < 0:
            raise ValueError(f"baseline duration must be >= 0 s, got {self.duration_s}")


def attach_baselines(estimator: Estimator, options: BaselineOptions | None = None) -> BaselineBook | None:
    """Give ``estimator`` a baseline book per ``options``; None (absolute only) when its model
    has no relative head. Learnt baselines are saved to the subject's profile (``save``/``load``)."""
    options = options or BaselineOptions()
    if estimator.relative_head is None:
        estimator.baselines = None
        return None
    store = BaselineProfiles(options.folder) if options.profiles != "off" else None

    def saved(subject: str, stats: BaselineStats, t: float) -> None:
        if store is not None and stats.source not in ("profile", "recorded"):
            try:
                store.save(subject, stats)
            except OSError as exc:
                log.warning("baseline of %s not saved to %s: %s", subject, store.folder, exc)

    book = estimator.new_baseline_book(duration_s=options.duration_s or DEFAULT_BASELINE_S,
                                       auto=options.duration_s > 0, on_baseline=saved)
    if store is not None and options.profiles == "load":
        book.loader = store.load
    return book
