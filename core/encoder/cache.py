"""A small on-disk cache for derived encoder artefacts (converted models, measured choices).

Where: ``$PAINMON_CACHE_DIR`` if set (tests point it at a temporary folder), else
``$XDG_CACHE_HOME/painmon``, else ``~/.cache/painmon``.

An entry is a set of files plus a ``<stem>.json`` manifest holding the entry's *key* (everything
the artefact depends on: weights fingerprint, runtime and code versions, ...) and each file's
size and SHA-256. Files are written under temporary names and renamed, the manifest last, so a
crash mid-write leaves an entry that fails verification instead of a half-written one that
passes. :func:`verify` says why an entry cannot be used (missing, stale key, checksum mismatch),
so the caller can log one line and rebuild it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

ENV_CACHE_DIR = "PAINMON_CACHE_DIR"
MANIFEST_VERSION = 1


def cache_root() -> Path:
    """The user cache folder for PainMon (not created here)."""
    override = os.environ.get(ENV_CACHE_DIR)
    if override:
        return Path(override).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "painmon"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def key_digest(key: Mapping[str, Any]) -> str:
    """Short stable digest of a key (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(dict(key), sort_keys=True).encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Digest of the encoder source files that shape converted graphs and measured choices.

    Part of every cache key, so a PainMon update that changes the model code never serves a
    graph converted from the old code.
    """
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in ("model.py", "spectral_expert.py", "window_expert.py", "layers.py", "fast.py", "fused.py",
                 "dft.py", "export.py", "openvino_backend.py", "auto.py"):
        p = here / name
        if p.exists():
            h.update(name.encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


@dataclass(frozen=True)
class Entry:
    """One cache entry: ``<folder>/<stem>.<suffix>`` files and ``<folder>/<stem>.json``."""

    folder: Path
    stem: str
    key: dict[str, Any]

    @classmethod
    def for_key(cls, kind: str, label: str, key: Mapping[str, Any], root: Path | None = None) -> Entry:
        """The entry for ``key`` under ``<root>/<kind>``; ``label`` makes file names readable."""
        key = dict(key)
        return cls((root or cache_root()) / kind, f"{label}-{key_digest(key)}", key)

    def path(self, suffix: str) -> Path:
        return self.folder / f"{self.stem}{suffix}"

    @property
    def manifest(self) -> Path:
        return self.path(".json")


def verify(entry: Entry, suffixes: tuple[str, ...]) -> str | None:
    """None when the entry is complete and intact; else a short reason it cannot be used."""
    if not entry.manifest.exists():
        return "not cached yet"
    try:
        meta = json.loads(entry.manifest.read_text())
    except (OSError, ValueError) as exc:
        return f"unreadable manifest ({type(exc).__name__})"
    if not isinstance(meta, dict) or meta.get("manifest_version") != MANIFEST_VERSION:
        return "manifest of another format"
    if meta.get("key") != entry.key:
        return "stale (its key differs: other weights, runtime or code version)"
    files = meta.get("files")
    if not isinstance(files, dict) or set(files) != set(suffixes):
        return "manifest lists other files"
    for suffix in suffixes:
        p = entry.path(suffix)
        rec = files[suffix]
        if not p.exists():
            return f"{p.name} is missing"
        if p.stat().st_size != rec.get("size") or sha256_file(p) != rec.get("sha256"):
            return f"{p.name} is corrupt (size or checksum mismatch)"
    return None


def commit(entry: Entry, written: Mapping[str, Path]) -> None:
    """Move freshly written files (suffix -> temporary path in ``entry.folder``) into place and
    write the manifest last; older entries with the same label and another key are removed."""
    entry.folder.mkdir(parents=True, exist_ok=True)
    files = {}
    for suffix, tmp in written.items():
        files[suffix] = {"size": tmp.stat().st_size, "sha256": sha256_file(tmp)}
        os.replace(tmp, entry.path(suffix))
    meta = {"manifest_version": MANIFEST_VERSION, "key": entry.key, "files": files}
    write_json_atomically(entry.manifest, meta)
    _remove_superseded(entry, tuple(written))


def write_json_atomically(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temp_path(entry: Entry, suffix: str) -> Path:
    """A unique temporary file name beside the entry's final ``suffix`` file."""
    entry.folder.mkdir(parents=True, exist_ok=True)
    return entry.folder / f".{entry.stem}.{os.getpid()}.tmp{suffix}"


def _remove_superseded(entry: Entry, suffixes: tuple[str, ...]) -> None:
    """Drop entries of the same label built for another key (old runtime/code versions): they
    can never be used again and would only fill the disk (a converted encoder is ~30 MB)."""
    label = entry.stem.rsplit("-", 1)[0]
    for manifest in entry.folder.glob(f"{label}-*.json"):
        stem = manifest.name[: -len(".json")]
        if stem == entry.stem or stem.rsplit("-", 1)[0] != label:
            continue
        for suffix in (*suffixes, ".json"):
            (entry.folder / f"{stem}{suffix}").unlink(missing_ok=True)
        log.info("removed superseded cache entry %s", entry.folder / stem)


__all__ = ["ENV_CACHE_DIR", "Entry", "cache_root", "code_version", "commit", "key_digest", "temp_path",
           "verify", "write_json_atomically"]
