"""A folder on a (nearly) full disk, for tests of what a recording does when writes fail.

As root on Linux: a real tmpfs of ``size`` bytes mounted on a fresh folder, so writes end
with ENOSPC exactly as on a full disk. Elsewhere (CI runs as a normal user): the process's
file-size limit (RLIMIT_FSIZE, SIGXFSZ ignored) is lowered to ``size`` bytes for the
duration, so a write past it fails with EFBIG; the recorder handles both alike ("disk
full"). Keep what the test itself writes meanwhile small.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _mount_tmpfs(folder: Path, size: int) -> bool:
    if not sys.platform.startswith("linux") or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True, check=False)
    return done.returncode == 0


@contextmanager
def full_disk(folder: Path, size: int = 64 * 1024) -> Iterator[Path]:
    """``folder`` (created) on which at most about ``size`` bytes can be written."""
    folder.mkdir(parents=True, exist_ok=True)
    if _mount_tmpfs(folder, size):
        try:
            yield folder
        finally:
            subprocess.run(["umount", "-l", str(folder)], check=False)
        return
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield folder
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
