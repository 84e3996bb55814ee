"""Orion's long-lived processes freeze their start-up heap and collect the young generation
less often (orion.gc_tuning); cycles made afterwards are still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from orion import gc_tuning


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_tune_freezes_the_heap_built_so_far_and_raises_the_young_threshold(
    restored_gc: None,
) -> None:
    gc.unfreeze()
    tracked = len(gc.get_objects())
    gc_tuning.tune()
    assert gc.get_freeze_count() >= tracked // 2  # what existed is out of the collector's walk
    assert gc.get_threshold() == (
        gc_tuning.YOUNG_THRESHOLD,
        gc_tuning.MIDDLE_PER_YOUNG,
        gc_tuning.OLD_PER_MIDDLE,
    )
    assert gc_tuning.YOUNG_THRESHOLD > 700  # CPython's default: fewer young collections


def test_cycles_made_after_tuning_are_still_collected(restored_gc: None) -> None:
    gc_tuning.tune()
    a, b = Node(), Node()
    a.other, b.other = b, a
    gone = weakref.ref(a)
    del a, b
    gc.collect(0)  # the young generation: where the cycle is, not frozen
    assert gone() is None
