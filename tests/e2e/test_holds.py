"""Holds and reversals through HTTP on the running system: every path of the contract,
expiry with no request from anyone, a post and a void racing, and a shard and the
orchestrator killed while holds are open. The audit (check 7 included) runs after each."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from orion.config import Settings
from tests.e2e.conftest import wait_for, wait_settled

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("audited")]
EXPIRY_BOUND_S = 30.0  # a hold past its 1 s timeout is expired by then (scan every 1 s)
RACES = 6  # post-vs-void races run in one test
KILLED_HOLDS = 6  # holds open while a shard and the orchestrator are killed
STATUS_TIMEOUT_S = 120  # `orion status` reads Kafka, PostgreSQL and Ray


def _hold(
    api: httpx.Client, debit: str, credit: str, amount: str, timeout_s: int | None = None
) -> str:
    body: dict[str, Any] = {
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": "RUB",
        "mode": "pending",
    }
    if timeout_s is not None:
        body["timeout_s"] = timeout_s
    answer = api.post("/v1/transfers", json=body)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def _transfer(api: httpx.Client, debit: str, credit: str, amount: str) -> str:
    body = {"debit_account_id": debit, "credit_account_id": credit, "amount": amount}
    answer = api.post("/v1/transfers", json={**body, "currency": "RUB"})
    assert answer.status_code == 202, answer.text
    return str(answer.json()["id"])


def _status(api: httpx.Client, transfer_id: str) -> str:
    return str(api.get(f"/v1/transfers/{transfer_id}").json()["status"])


def _settled(api: httpx.Client, transfer_id: str) -> dict[str, Any]:
    wait_for(lambda: _status(api, transfer_id) != "accepted")
    view: dict[str, Any] = api.get(f"/v1/transfers/{transfer_id}").json()
    return view


def _account(api: httpx.Client, account: str) -> tuple[str, str, str, str]:
    a = api.get(f"/v1/accounts/{account}").json()
    return a["balance"], a["pending_debits"], a["pending_credits"], a["available"]


def test_a_hold_reserves_and_a_partial_post_moves_only_what_is_posted(
    api: httpx.Client, make_accounts: Callable[..., list[str]]
) -> None:
    a, b = make_accounts(2)
    hold = _hold(api, a, b, "60.00")
    assert _settled(api, hold)["status"] == "pending"
    assert _account(api, a) == ("100.00", "60.00", "0.00", "40.00")
    assert _account(api, b) == ("100.00", "0.00", "60.00", "100.00")
    over = _settled(api, _transfer(api, a, b, "40.01"))
    assert (over["status"], over["reason"]) == ("rejected", "insufficient_funds")
    posted = api.post(f"/v1/transfers/{hold}/post", json={"amount": "25.00"})
    assert posted.status_code == 202, posted.text
    post_id = posted.json()["id"]
    assert _settled(api, post_id)["status"] == "posted"
    view = _settled(api, hold)
    assert (view["status"], view["posted_amount"]) == ("posted", "25.00")
    assert _account(api, a) == ("75.00", "0.00", "0.00", "75.00")
    assert _account(api, b) == ("125.00", "0.00", "0.00", "125.00")
    again = api.post(f"/v1/transfers/{hold}/post", json={"amount": "25.00"})
    assert (again.status_code, again.json()["id"]) == (202, post_id)  # as the first time
    assert api.post(f"/v1/transfers/{hold}/void").status_code == 409


def test_a_void_releases_and_a_hold_above_available_is_rejected(
    api: httpx.Client, make_accounts: Callable[..., list[str]]
) -> None:
    a, b = make_accounts(2)
    too_much = _settled(api, _hold(api, a, b, "100.01"))
    assert (too_much["status"], too_much["reason"]) == ("rejected", "insufficient_funds")
    hold = _hold(api, a, b, "30.00")
    _settled(api, hold)
    void = api.post(f"/v1/transfers/{hold}/void", params={"wait": 10})
    assert (void.status_code, void.json()["status"]) == (200, "voided"), void.text
    assert _status(api, hold) == "voided"
    assert api.post(f"/v1/transfers/{hold}/void").json()["id"] == void.json()["id"]
    assert api.post(f"/v1/transfers/{hold}/post").status_code == 409
    assert _account(api, a) == ("100.00", "0.00", "0.00", "100.00")


def test_a_hold_expires_at_its_timeout_with_no_request(
    api: httpx.Client, make_accounts: Callable[..., list[str]]
) -> None:
    a, b = make_accounts(2)
    hold = _hold(api, a, b, "10.00", timeout_s=1)
    wait_for(lambda: _status(api, hold) == "expired", EXPIRY_BOUND_S)
    assert _account(api, a) == ("100.00", "0.00", "0.00", "100.00")
    assert api.post(f"/v1/transfers/{hold}/post").status_code == 409
    status = subprocess.run(
        [sys.executable, "-m", "orion.cli", "status"],
        capture_output=True, text=True, timeout=STATUS_TIMEOUT_S, check=False,
    )  # fmt: skip
    assert "holds: " in status.stdout and "STUCK" not in status.stdout, status.stdout


def test_a_post_and_a_void_racing_on_one_hold_exactly_one_wins(
    settings: Settings, api: httpx.Client, make_accounts: Callable[..., list[str]]
) -> None:
    """Both sent at once, RACES times: each hold ends posted or voided, never both, and the
    loser is refused (409) or settles rejected / hold_not_pending."""
    a, b = make_accounts(2)
    holds = [_hold(api, a, b, "5.00") for _ in range(RACES)]
    for hold in holds:
        _settled(api, hold)
    with ThreadPoolExecutor(2 * RACES) as pool:
        answers = list(
            pool.map(
                lambda job: api.post(f"/v1/transfers/{job[0]}/{job[1]}"),
                [(hold, action) for hold in holds for action in ("post", "void")],
            )
        )
    accepted = [r.json()["id"] for r in answers if r.status_code == 202]
    assert all(r.status_code in (202, 409) for r in answers), [r.text for r in answers]
    outcomes = wait_settled(settings, accepted)
    for hold in holds:
        final = _status(api, hold)
        assert final in ("posted", "voided")
    won = [s for s, _ in outcomes.values() if s in ("posted", "voided")]
    lost = [r for s, r in outcomes.values() if s == "rejected"]
    assert len(won) == RACES and set(lost) <= {"hold_not_pending"}
    posted = sum(_status(api, h) == "posted" for h in holds)
    balance = f"{100 - 5 * posted:.2f}"
    assert _account(api, a) == (balance, "0.00", "0.00", balance)


def test_reversals_are_bounded_and_a_reversal_can_be_reversed(
    api: httpx.Client, make_accounts: Callable[..., list[str]]
) -> None:
    a, b, c = make_accounts(3)
    original = _transfer(api, a, b, "40.00")
    _settled(api, original)
    part = api.post(f"/v1/transfers/{original}/reverse", json={"amount": "15.00"})
    assert part.status_code == 202, part.text
    reversal = _settled(api, part.json()["id"])
    assert (reversal["status"], reversal["reverses"], reversal["mode"]) == (
        "completed", original, "reversal"
    )  # fmt: skip
    over = api.post(f"/v1/transfers/{original}/reverse", json={"amount": "25.01"})
    assert (over.status_code, over.json()["detail"][0]["field"]) == (422, "amount")
    rest = api.post(f"/v1/transfers/{original}/reverse")  # default: the 25.00 left
    assert _settled(api, rest.json()["id"])["amount"] == "25.00"
    assert _settled(api, original)["reversed_amount"] == "40.00"
    assert api.post(f"/v1/transfers/{original}/reverse").status_code == 409
    back = api.post(f"/v1/transfers/{part.json()['id']}/reverse")  # a reversal of a reversal
    assert _settled(api, back.json()["id"])["status"] == "completed"
    assert _account(api, a)[0] == "85.00" and _account(api, b)[0] == "115.00"
    # The credited account spent the money: the reversal settles rejected, nothing moves.
    spent = _transfer(api, b, c, "115.00")
    _settled(api, spent)
    last = _transfer(api, a, b, "1.00")
    _settled(api, last)
    _settled(api, _transfer(api, b, c, "1.00"))
    refused = _settled(api, api.post(f"/v1/transfers/{last}/reverse").json()["id"])
    assert (refused["status"], refused["reason"]) == ("rejected", "insufficient_funds")


def test_holds_open_while_a_shard_and_the_orchestrator_are_killed(
    settings: Settings,
    api: httpx.Client,
    make_accounts: Callable[..., list[str]],
    ray_driver: Any,
) -> None:
    """kill -9 a shard, then the orchestrator, with holds open and actions in flight: Ray
    restarts them; every hold still ends exactly once (posted, voided or expired), and
    nothing stays pending."""
    a, b = make_accounts(2)
    holds = [
        _hold(api, a, b, "2.00", timeout_s=3 if i % 3 == 2 else 600) for i in range(KILLED_HOLDS)
    ]
    for hold in holds:
        _settled(api, hold)
    os.kill(ray_driver.shard_pid(0), signal.SIGKILL)
    actions = {}
    for i, hold in enumerate(holds):
        action = ("post", "void", None)[i % 3]
        if action is not None:
            actions[hold] = api.post(f"/v1/transfers/{hold}/{action}")
    os.kill(ray_driver.orchestrator_pid(), signal.SIGKILL)
    assert all(r.status_code == 202 for r in actions.values()), [r.text for r in actions.values()]
    wait_settled(settings, [r.json()["id"] for r in actions.values()])
    expected = {0: "posted", 1: "voided", 2: "expired"}
    for i, hold in enumerate(holds):
        wait_for(lambda h=hold: _status(api, h) != "pending", EXPIRY_BOUND_S + 30)
        assert _status(api, hold) == expected[i % 3], hold
    posted = sum(i % 3 == 0 for i in range(KILLED_HOLDS))
    balance = f"{100 - 2 * posted:.2f}"
    assert _account(api, a) == (balance, "0.00", "0.00", balance)
