"""load/wire_costs.py measures every part of the settle path's serialisation it names."""

from __future__ import annotations

import functools
import pickle

import pytest

from load import wire_costs


def test_every_cost_is_measured_and_the_answer_is_smaller_than_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wire_costs, "ROUNDS", 1)
    monkeypatch.setattr(wire_costs, "REPEATS", 1)
    costs = wire_costs.measure(functools.partial(pickle.dumps, protocol=5))
    assert set(costs) == {
        "decode", "dispatch pickle", "dispatch unpickle", "answer pickle", "answer unpickle",
        "outcome encode", "dispatch bytes", "answer bytes",
    }  # fmt: skip
    assert all(value > 0 for value in costs.values())
    assert costs["answer bytes"] < costs["dispatch bytes"]
