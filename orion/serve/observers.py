"""Hooks the hosting runtime attaches to count what the API does, without the API importing it.

The FastAPI app runs under Ray Serve and under plain TestClient alike, so it never imports
Ray; `orion.serve.deployment` (inside the Serve replica) registers a `ray.serve.metrics`
counter here, and the acceptance path calls every registered observer.
"""

from __future__ import annotations

from collections.abc import Callable

from orion.domain.progress import Settlement

AcceptedObserver = Callable[[int], None]
RoundObserver = Callable[[float], None]
SettlementObserver = Callable[[Settlement], None]
_ACCEPTED: list[AcceptedObserver] = []
_ROUNDS: list[RoundObserver] = []
_SETTLEMENT: list[SettlementObserver] = []


def on_accepted(observer: AcceptedObserver) -> None:
    _ACCEPTED.append(observer)


def accepted(count: int) -> None:
    """`count` transfers were just acknowledged by the broker (first acceptance only)."""
    for observer in _ACCEPTED:
        observer(count)


def on_round(observer: RoundObserver) -> None:
    _ROUNDS.append(observer)


def round_took(seconds: float) -> None:
    """One acceptance round (idempotency claims, produce and acks, promotion) took this long."""
    for observer in _ROUNDS:
        observer(seconds)


def on_settlement(observer: SettlementObserver) -> None:
    _SETTLEMENT.append(observer)


def settlement(reading: Settlement) -> None:
    """A new reading of settlement progress (every few seconds, from the monitor thread)."""
    for observer in _SETTLEMENT:
        observer(reading)
