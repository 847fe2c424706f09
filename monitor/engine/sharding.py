"""Spreading subjects over several ``painmon serve`` instances.

Each instance is told its share as ``K/N`` and serves exactly the subjects whose stable
hash falls in it. The hash must not depend on the process (Python's ``hash()`` of a str is
salted per process), on the order subjects appear, or on which other subjects exist: so
every instance, started anywhere and at any time, agrees on who serves whom with no
coordination beyond the shared configuration. CRC-32 of the UTF-8 subject id does that.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """Share ``index`` (1-based) of ``count``."""

    index: int = 1
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 1 <= K <= N")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/3"`` -> Shard(2, 3)."""
        m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
        if not m:
            raise ValueError(f"shard {text!r} is not K/N (e.g. 1/3)")
        return cls(int(m.group(1)), int(m.group(2)))

    def owns(self, subject: str) -> bool:
        return shard_of(subject, self.count) == self.index

    __call__ = owns

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(subject: str, count: int) -> int:
    """The 1-based shard of ``subject`` among ``count``."""
    return zlib.crc32(subject.encode("utf-8")) % count + 1
