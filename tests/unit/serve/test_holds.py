"""The hold and reversal routes with fake dependencies: what they accept, what they refuse
and how, and what they put on the wire."""

from __future__ import annotations

import uuid
from dataclasses import replace

from fastapi.testclient import TestClient

from orion.domain.model import Kind, hold_action_id
from orion.serve.ports import AccountRow, TransferRow
from orion.serve.schemas import HOLD_TIMEOUT_S_DEFAULT, HOLD_TIMEOUT_S_MAX
from tests.unit.serve.fakes import NOW, FakeLedger, FakeProducer

HOLD = {
    "debit_account_id": "alice",
    "credit_account_id": "bob",
    "amount": "5.00",
    "currency": "RUB",
    "mode": "pending",
}


def settled(ledger: FakeLedger, kind: str = "pending", status: str = "pending") -> str:
    transfer_id = str(uuid.uuid4())
    ledger.transfers[transfer_id] = TransferRow(
        transfer_id, status, None, "alice", "bob", 500, "RUB", NOW, NOW, kind
    )
    return transfer_id


def test_a_hold_is_produced_with_its_kind_and_deadline(
    client: TestClient, producer: FakeProducer
) -> None:
    """mode=pending: the record says so and expires timeout_s (default an hour) after it
    was accepted."""
    assert client.post("/v1/transfers", json=HOLD).status_code == 202
    assert client.post("/v1/transfers", json={**HOLD, "timeout_s": 60}).status_code == 202
    first, second = producer.transfers
    assert first.transfer.kind == Kind.PENDING
    assert first.expires_at_ms == first.accepted_at_ms + HOLD_TIMEOUT_S_DEFAULT * 1000
    assert second.expires_at_ms == second.accepted_at_ms + 60_000


def test_bad_hold_fields_are_refused_naming_them(client: TestClient) -> None:
    cases = [
        ({**HOLD, "mode": "immediate", "timeout_s": 5}, "timeout_s"),
        ({**HOLD, "timeout_s": HOLD_TIMEOUT_S_MAX + 1}, "timeout_s"),
        ({**HOLD, "timeout_s": 0}, "timeout_s"),
        ({**HOLD, "mode": "later"}, "mode"),
    ]
    for body, field in cases:
        answer = client.post("/v1/transfers", json=body)
        assert answer.status_code == 422, body
        assert field in answer.text, answer.text


def test_post_produces_the_hold_action_and_repeats_answer_the_same(
    client: TestClient, ledger: FakeLedger, producer: FakeProducer
) -> None:
    hold = settled(ledger)
    first = client.post(f"/v1/transfers/{hold}/post", json={"amount": "2.50"})
    again = client.post(f"/v1/transfers/{hold}/post", json={"amount": "2.50"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] == hold_action_id(hold, Kind.POST)
    post = producer.transfers[-1].transfer
    assert (post.kind, post.target_id, post.amount) == (Kind.POST, hold, 250)
    assert (post.debit_account_id, post.credit_account_id) == ("alice", "bob")
    other = client.post(f"/v1/transfers/{hold}/post", json={"amount": "1.00"})
    assert other.status_code == 409, other.text


def test_post_above_the_held_amount_is_refused_naming_amount(
    client: TestClient, ledger: FakeLedger
) -> None:
    answer = client.post(f"/v1/transfers/{settled(ledger)}/post", json={"amount": "5.01"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["field"] == "amount"


def test_a_resolved_hold_refuses_other_actions_but_repeats_its_own(
    client: TestClient, ledger: FakeLedger
) -> None:
    """Voided: a post is 409 and changes nothing; the void repeated is 202, as the first."""
    hold = settled(ledger, status="voided")
    void_id = hold_action_id(hold, Kind.VOID)
    ledger.transfers[void_id] = TransferRow(
        void_id, "voided", None, "alice", "bob", 500, "RUB", NOW, NOW, "void", hold
    )
    assert client.post(f"/v1/transfers/{hold}/post").status_code == 409
    again = client.post(f"/v1/transfers/{hold}/void")
    assert (again.status_code, again.json()["id"]) == (202, void_id)


def test_actions_on_what_is_not_a_settled_hold(client: TestClient, ledger: FakeLedger) -> None:
    """Unknown: 404; accepted but not settled: 409 (retry); an immediate transfer: 409."""
    assert client.post(f"/v1/transfers/{uuid.uuid4()}/void").status_code == 404
    accepted = client.post("/v1/transfers", json=HOLD).json()["id"]
    assert "not settled yet" in client.post(f"/v1/transfers/{accepted}/void").text
    plain = settled(ledger, "immediate", "completed")
    assert "not a hold" in client.post(f"/v1/transfers/{plain}/post").text


def test_reversal_defaults_to_what_is_left_and_never_asks_more(
    client: TestClient, ledger: FakeLedger, producer: FakeProducer
) -> None:
    original = settled(ledger, "immediate", "completed")
    ledger.transfers[original] = replace(ledger.transfers[original], reversed_amount=200)
    assert client.post(f"/v1/transfers/{original}/reverse").status_code == 202
    reversal = producer.transfers[-1].transfer
    assert (reversal.kind, reversal.target_id, reversal.amount) == (Kind.REVERSAL, original, 300)
    assert (reversal.debit_account_id, reversal.credit_account_id) == ("bob", "alice")
    over = client.post(f"/v1/transfers/{original}/reverse", json={"amount": "3.01"})
    assert (over.status_code, over.json()["detail"][0]["field"]) == (422, "amount")
    ledger.transfers[original] = replace(ledger.transfers[original], reversed_amount=500)
    assert "in full" in client.post(f"/v1/transfers/{original}/reverse").text
    rejected = settled(ledger, "immediate", "rejected")
    assert client.post(f"/v1/transfers/{rejected}/reverse").status_code == 409


def test_views_show_holds_and_available_balances(client: TestClient, ledger: FakeLedger) -> None:
    hold = settled(ledger, status="posted")
    ledger.transfers[hold] = replace(ledger.transfers[hold], posted_amount=250)
    view = client.get(f"/v1/transfers/{hold}").json()
    assert (view["status"], view["mode"], view["posted_amount"]) == ("posted", "pending", "2.50")
    ledger.accounts["alice"] = AccountRow("alice", "RUB", 1_000, 0, NOW, NOW, 300, 0)
    account = client.get("/v1/accounts/alice").json()
    assert (account["balance"], account["pending_debits"], account["available"]) == (
        "10.00", "3.00", "7.00"
    )  # fmt: skip


def test_a_hold_past_its_timeout_takes_no_post_or_void(
    client: TestClient, ledger: FakeLedger
) -> None:
    """Its expiry is on the way: posting or voiding it now is 409, nothing produced."""
    hold = settled(ledger)
    ledger.transfers[hold] = replace(ledger.transfers[hold], expires_at=NOW)  # in the past
    for action in ("post", "void"):
        answer = client.post(f"/v1/transfers/{hold}/{action}")
        assert answer.status_code == 409 and "timed out" in answer.text, answer.text
