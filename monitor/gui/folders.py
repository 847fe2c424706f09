"""Where the dashboard's file dialogs start.

* **Open recording**: the folder last used, else the bundled sample sessions, so a new user
  finds something to open at once;
* **Record / export** (save dialogs): the folder last used unless it lies inside PainMon's
  own folder (after opening a sample session it would), else the user's recordings folder
  (:func:`core.paths.recordings_dir`, created when first suggested). A recording saved
  into the package would be lost on the next update, or fail on a read-only install.
"""

from __future__ import annotations

import logging
from pathlib import Path

from core.paths import inside_package, recordings_dir, sample_sessions_dir

log = logging.getLogger(__name__)


def open_folder(last_dir: str) -> str:
    """Start folder of the Open-recording dialog."""
    if last_dir and Path(last_dir).is_dir():
        return last_dir
    samples = sample_sessions_dir()
    return str(samples) if samples.is_dir() else str(Path.home())


def save_folder(last_dir: str) -> str:
    """Start folder of the save dialogs (recording, screenshot, CSV export)."""
    if last_dir and Path(last_dir).is_dir() and not inside_package(last_dir):
        return last_dir
    folder = recordings_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # e.g. a read-only home: suggest the home folder itself
        log.info("cannot create %s (%s); suggesting the home folder", folder, exc)
        return str(Path.home())
    return str(folder)
