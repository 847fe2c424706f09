"""Reading torch files without ever running code from them, with one-line errors.

Model and encoder files come from outside (downloads, colleagues), so they are read with
``torch.load(weights_only=True)``, which refuses any pickled object that is not a tensor or
a plain container. torch reports such a refusal, like a file that is no checkpoint at all,
with several lines of advice (including "re-run with weights_only=False", which PainMon
never does); :func:`load_weights_only` turns every failure into one line that says which
kind of problem the file has.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import torch


class UnsafeOrUnreadableFile(ValueError):
    """A file that is not a path to a readable, tensors-only torch checkpoint."""


def check_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` as a Path if it names a non-empty file; else one precise line."""
    if not str(path).strip():
        raise UnsafeOrUnreadableFile(f"{what} path is empty")
    p = Path(path).expanduser()
    if not p.exists():
        raise UnsafeOrUnreadableFile(f"{what} {p} not found")
    if p.is_dir():
        raise UnsafeOrUnreadableFile(f"{what} {p} is a directory, not a file")
    if p.stat().st_size == 0:
        raise UnsafeOrUnreadableFile(f"{what} {p} is empty")
    return p


def load_weights_only(path: str | os.PathLike, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU; every failure one line naming ``what``."""
    p = check_file(path, what)
    try:
        with warnings.catch_warnings():  # torch's note on pickle protocols is not for our users
            warnings.simplefilter("ignore")
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (pickle, zip, RuntimeError) for bad files
        raise UnsafeOrUnreadableFile(f"{what} {p}: {describe_failure(exc, _head(p))}") from None


def _head(p: Path) -> bytes:
    try:
        with open(p, "rb") as f:
            return f.read(512)
    except OSError:
        return b""


def describe_failure(exc: BaseException, head: bytes = b"") -> str:
    """One line for a failed weights-only load (``head``: the file's first bytes)."""
    text = str(exc)
    if head and not head.startswith((b"PK\x03\x04", b"\x80")):  # neither torch's zip nor a pickle
        printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head) / len(head)
        kind = "a text file" if printable > 0.95 else "unknown binary content"
        return f"not a torch checkpoint (it holds {kind})"
    if "Weights only load failed" in text or "weights_only" in text.lower():
        return ("refused: it holds Python objects other than tensors (a pickle that could run code); "
                "PainMon only reads tensors")
    if isinstance(exc, EOFError) or "EOF" in text or "truncated" in text.lower() or "central directory" in text:
        return "truncated or corrupt torch file"
    first = text.strip().splitlines()[0][:160] if text.strip() else type(exc).__name__
    return f"not a torch checkpoint ({type(exc).__name__}: {first})"
