"""Transfers through HTTP on local Ray settle exactly once, in per-account order."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from orion.config import Settings
from tests.e2e.conftest import wait_for, wait_settled

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("audited")]


def _balance(api: httpx.Client, account: str) -> str:
    return str(api.get(f"/v1/accounts/{account}").json()["balance"])


def _transfer(debit: str, credit: str, amount: str, tid: str | None = None) -> dict[str, str]:
    return {
        "id": tid or str(uuid.uuid4()),
        "debit_account_id": debit,
        "credit_account_id": credit,
        "amount": amount,
        "currency": "RUB",
    }


def test_single_transfer_settles_and_both_balances_move(
    api: httpx.Client, make_accounts: Callable[..., list[str]]
) -> None:
    """202 accepted, then completed; debit down and credit up by exactly the amount."""
    a, b = make_accounts(2)
    body = _transfer(a, b, "12.34")
    resp = api.post("/v1/transfers", json=body)
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"id": body["id"], "status": "accepted"}
    wait_for(lambda: api.get(f"/v1/transfers/{body['id']}").json()["status"] == "completed")
    assert (_balance(api, a), _balance(api, b)) == ("87.66", "112.34")


def test_insufficient_funds_is_rejected_and_moves_nothing(
    api: httpx.Client, make_accounts: Callable[..., list[str]]
) -> None:
    """A transfer above balance + overdraft is a recorded rejection, not an error."""
    a, b = make_accounts(2, balance="5.00")
    body = _transfer(a, b, "5.01")
    assert api.post("/v1/transfers", json=body).status_code == 202
    wait_for(lambda: api.get(f"/v1/transfers/{body['id']}").json()["status"] != "accepted")
    final = api.get(f"/v1/transfers/{body['id']}").json()
    assert (final["status"], final["reason"]) == ("rejected", "insufficient_funds")
    assert (_balance(api, a), _balance(api, b)) == ("5.00", "5.00")


def test_same_id_posted_eight_times_concurrently_applies_once(
    api: httpx.Client, make_accounts: Callable[..., list[str]], settings: Settings
) -> None:
    """Eight concurrent identical posts: all answered 202, money moved once."""
    a, b = make_accounts(2)
    body = _transfer(a, b, "1.00")
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda _: api.post("/v1/transfers", json=body).status_code, range(8)))
    assert codes == [202] * 8
    wait_settled(settings, [body["id"]])
    assert (_balance(api, a), _balance(api, b)) == ("99.00", "101.00")


def test_same_id_different_body_is_409(
    api: httpx.Client, make_accounts: Callable[..., list[str]]
) -> None:
    """Reusing an id for another transfer is refused, naming the conflict."""
    a, b = make_accounts(2)
    body = _transfer(a, b, "1.00")
    assert api.post("/v1/transfers", json=body).status_code == 202
    assert api.post("/v1/transfers", json={**body, "amount": "2.00"}).status_code == 409


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"amount": "-1"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "1.001"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"currency": "XXXX"}, "currency"),
        ({"id": "not-a-uuid"}, "id"),
        ({"credit_account_id": None}, "credit_account_id"),
    ],
)
def test_bad_input_is_4xx_naming_the_field(
    api: httpx.Client, patch: dict[str, object], field: str
) -> None:
    """Each malformed body gets a 4xx whose message names the offending field."""
    body = {**_transfer("acc-1", "acc-2", "1.00"), **patch}
    resp = api.post("/v1/transfers", json=body)
    assert 400 <= resp.status_code < 500, resp.text
    assert field in resp.text


def test_random_load_keeps_order_and_audits_clean(
    api: httpx.Client, make_accounts: Callable[..., list[str]], settings: Settings
) -> None:
    """2,000 random transfers among 50 accounts from 20 concurrent clients all settle once;
    each debit account's transfers settle in acceptance order (audit check 5)."""
    accounts = make_accounts(50, balance="20.00")
    rng = random.Random(7)
    bodies = []
    for _ in range(2_000):
        debit, credit = rng.sample(accounts, 2)
        bodies.append(_transfer(debit, credit, f"{rng.randint(1, 300) / 100:.2f}"))

    def post(body: dict[str, str]) -> int:
        return api.post("/v1/transfers", json=body).status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(post, bodies))
    assert codes == [202] * len(bodies)
    rows = wait_settled(settings, [b["id"] for b in bodies])
    assert {status for status, _ in rows.values()} <= {"completed", "rejected"}
    with psycopg.connect(settings.postgres_dsn) as conn:
        total = conn.execute(
            "SELECT sum(balance) FROM accounts WHERE id = ANY(%s)", (accounts,)
        ).fetchone()
    assert total is not None and int(total[0]) == 50 * 2_000  # nothing created or lost
