"""ShapeSpecialiser: fixed-shape artefacts built once in the background, bounded, never waited for."""

from __future__ import annotations

import logging
import threading

import pytest

from core.encoder.shapes import ShapeSpecialiser


def test_first_request_starts_a_background_build_and_later_ones_get_it():
    calls: list[int] = []
    release = threading.Event()

    def build(size: int) -> str:
        release.wait(5)
        calls.append(size)
        return f"model[{size}]"

    shapes: ShapeSpecialiser[int, str] = ShapeSpecialiser(build)
    assert shapes.get(8) is None  # not built: the caller serves it another way, without waiting
    assert shapes.get(8) is None and not shapes.settle(timeout=0.05)  # still under way, started once
    release.set()
    assert shapes.settle(timeout=5)
    assert shapes.get(8) == "model[8]" and shapes.keys() == [8]
    assert calls == [8]
    shapes.close()


def test_at_most_capacity_artefacts_are_kept_least_recently_used_dropped():
    shapes: ShapeSpecialiser[int, int] = ShapeSpecialiser(lambda n: n * 10, capacity=2)
    assert shapes.prepare([1, 2], timeout=5) and shapes.keys() == [1, 2]
    assert shapes.get(1) == 10  # 1 is now the most recently used
    assert shapes.prepare([3], timeout=5)
    assert shapes.keys() == [1, 3]
    assert shapes.prepare(range(100, 120), timeout=5) and len(shapes.keys()) == 2
    with pytest.raises(ValueError, match="capacity"):
        ShapeSpecialiser(lambda n: n, capacity=0)
    shapes.close()


def test_a_failing_build_is_logged_once_and_not_retried(caplog):
    calls: list[int] = []

    def build(size: int) -> int:
        calls.append(size)
        raise RuntimeError("cannot compile this shape\nsecond line")

    shapes: ShapeSpecialiser[int, int] = ShapeSpecialiser(build, name="test-shapes")
    with caplog.at_level(logging.WARNING, logger="core.encoder.shapes"):
        assert shapes.prepare([4], timeout=5)
        assert shapes.get(4) is None and shapes.settle(timeout=5)
    assert calls == [4]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "cannot compile this shape" in lines[0] and "second line" not in lines[0]
    shapes.close()


def test_clear_discards_a_build_made_from_what_was_replaced():
    started, release = threading.Event(), threading.Event()
    version = {"weights": "old"}

    def build(size: int) -> str:
        seen = version["weights"]
        started.set()
        release.wait(5)
        return f"{seen}[{size}]"

    shapes: ShapeSpecialiser[int, str] = ShapeSpecialiser(build)
    shapes.get(8)
    assert started.wait(5)
    version["weights"] = "new"
    shapes.clear()  # e.g. new weights loaded while the old ones compile
    release.set()
    assert shapes.settle(timeout=5)
    assert shapes.keys() == [] and shapes.get(8) is None
    assert shapes.settle(timeout=5) and shapes.get(8) == "new[8]"
    shapes.close()
