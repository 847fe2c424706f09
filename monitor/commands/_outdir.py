"""An output folder that a failed command does not leave behind empty.

``painmon train`` and ``pretrain`` create their run folder (``--out``) before they know
whether the data can be read; when they fail, a new empty folder (or one holding only
empty sub-folders such as ``cache/``) is only clutter that looks like a finished run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def _first_missing(path: Path) -> Path | None:
    """The topmost folder of ``path`` that does not exist yet (what a run would create)."""
    path = path.absolute()
    missing = None
    for folder in (path, *path.parents):
        if folder.exists():
            break
        missing = folder
    return missing


def remove_empty_tree(top: Path) -> bool:
    """Remove ``top`` if it holds nothing but empty folders; True when it is gone."""
    if not top.is_dir():
        return not top.exists()
    for root, dirs, files in os.walk(top, topdown=False):
        if files:
            return False
        for d in dirs:
            try:
                os.rmdir(Path(root) / d)
            except OSError:  # not empty (a link, a file appeared): keep it
                return False
    try:
        top.rmdir()
    except OSError:
        return False
    return True


@contextmanager
def output_folder(path: Path) -> Iterator[Path]:
    """Run the body with ``path`` as the output folder; if the body raises, the folders
    it created are removed when they hold no file. A folder that existed before is never
    touched."""
    created = _first_missing(Path(path))
    ok = False
    try:
        yield Path(path)
        ok = True
    finally:
        if not ok and created is not None and remove_empty_tree(created):
            log.info("removed the empty output folder %s", created)
