"""ShapeSpecialiser: fixed-shape artefacts built in the background once a size recurs, bounded,
never waited for, and never thrashing."""

from __future__ import annotations

import logging
import threading

import pytest

from core.encoder.shapes import ShapeSpecialiser


class Clock:
    """Monotonic seconds the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_size_is_built_in_the_background_on_its_third_request():
    calls: list[int] = []
    release = threading.Event()

    def build(size: int) -> str:
        release.wait(5)
        calls.append(size)
        return f"model[{size}]"

    shapes: ShapeSpecialiser[int, str] = ShapeSpecialiser(build, min_requests=3)
    assert shapes.get(8) is None and shapes.get(8) is None
    assert shapes.settle(timeout=0.05)  # two requests: nothing under way
    assert shapes.get(8) is None  # the third starts the build; the caller does not wait for it
    assert shapes.get(8) is None and not shapes.settle(timeout=0.05)  # under way, started once
    release.set()
    assert shapes.settle(timeout=5)
    assert shapes.get(8) == "model[8]" and shapes.keys() == [8]
    assert calls == [8]
    shapes.close()


def test_prepare_builds_at_once_and_keeps_at_most_capacity():
    shapes: ShapeSpecialiser[int, int] = ShapeSpecialiser(lambda n: n * 10, capacity=2)
    assert shapes.prepare([1, 2], timeout=5) and shapes.keys() == [1, 2]
    assert shapes.get(1) == 10  # 1 is now the most recently used
    assert shapes.prepare([3], timeout=5)
    assert shapes.keys() == [1, 3]
    assert shapes.prepare(range(100, 120), timeout=5) and len(shapes.keys()) == 2
    with pytest.raises(ValueError, match="capacity"):
        ShapeSpecialiser(lambda n: n, capacity=0)
    shapes.close()


def test_shapes_in_steady_use_are_never_evicted_for_another():
    """A load cycling through more sizes than fit must not keep the compiler busy: a new size
    gets a slot only when a held one has gone unused for idle_s."""
    clock = Clock()
    built: list[int] = []

    def build(size: int) -> int:
        built.append(size)
        return size

    shapes: ShapeSpecialiser[int, int] = ShapeSpecialiser(build, capacity=2, min_requests=1, idle_s=60.0,
                                                          clock=clock)
    for _ in range(20):  # sizes 1, 2 and 3 take turns, all in steady use
        for size in (1, 2, 3):
            shapes.get(size)
            shapes.settle(timeout=5)
            clock.t += 1.0
    assert built == [1, 2] and shapes.keys() == [1, 2]
    clock.t += 30.0
    shapes.get(2)  # 2 stays in use, 1 goes idle
    clock.t += 31.0
    shapes.get(3)
    assert shapes.settle(timeout=5)
    assert built == [1, 2, 3] and shapes.keys() == [2, 3]


def test_a_failing_build_is_logged_once_and_not_retried(caplog):
    calls: list[int] = []

    def build(size: int) -> int:
        calls.append(size)
        raise RuntimeError("cannot compile this shape\nsecond line")

    shapes: ShapeSpecialiser[int, int] = ShapeSpecialiser(build, name="test-shapes", min_requests=1)
    with caplog.at_level(logging.WARNING, logger="core.encoder.shapes"):
        assert shapes.prepare([4], timeout=5)
        for _ in range(3):
            assert shapes.get(4) is None
        assert shapes.settle(timeout=5)
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

    shapes: ShapeSpecialiser[int, str] = ShapeSpecialiser(build, min_requests=1)
    shapes.get(8)
    assert started.wait(5)
    version["weights"] = "new"
    shapes.clear()  # e.g. new weights loaded while the old ones compile
    release.set()
    assert shapes.settle(timeout=5)
    assert shapes.keys() == [] and shapes.get(8) is None
    assert shapes.settle(timeout=5) and shapes.get(8) == "new[8]"
    shapes.close()


def test_request_counts_stay_bounded_whatever_the_callers_ask_for():
    from core.encoder.shapes import REQUEST_KEYS_KEPT

    shapes: ShapeSpecialiser[int, int] = ShapeSpecialiser(lambda n: n, min_requests=3)
    for size in range(10 * REQUEST_KEYS_KEPT):
        shapes.get(size)
    assert len(shapes._requests) <= REQUEST_KEYS_KEPT and shapes.keys() == []
    shapes.close()
