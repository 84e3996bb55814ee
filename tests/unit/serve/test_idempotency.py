"""Exactly-once acceptance: one record per id, one answer per body, whatever the timing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from orion.domain.model import Transfer
from orion.serve import idempotency as idem
from orion.serve import observers
from orion.serve.acceptance import Acceptor, Verdict
from orion.serve.idempotency import candidate
from orion.serve.ports import Record
from tests.unit.serve.fakes import FakeProducer, FakeStore


def body(transfer_id: str, amount: str = "12.30") -> dict[str, str]:
    return {
        "id": transfer_id,
        "debit_account_id": "alice",
        "credit_account_id": "bob",
        "amount": amount,
        "currency": "RUB",
    }


def item(transfer_id: str, amount: int = 1230) -> idem.Candidate:
    return candidate(Transfer(transfer_id, "alice", "bob", amount, "RUB"), None)


class FailingOnce(FakeProducer):
    """Fails its first produce call (after `gate`), succeeds afterwards."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    async def produce(self, records: Sequence[Record]) -> list[BaseException | None]:
        self.calls += 1
        if self.calls == 1:
            if self.gate is not None:
                await self.gate.wait()
            return [ConnectionError("broker gone") for _ in records]
        return await super().produce(records)


def test_same_body_twice_answers_the_same_and_produces_once(
    client: TestClient, producer: FakeProducer
) -> None:
    """A retried POST (same id, "12.3" vs "12.30") gets the first 202 again, no new record."""
    transfer_id = str(uuid.uuid4())
    first = client.post("/v1/transfers", json=body(transfer_id, "12.30"))
    again = client.post("/v1/transfers", json=body(transfer_id, "12.3"))
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.json() == again.json() == {"id": transfer_id, "status": "accepted"}
    assert len(producer.records) == 1


def test_same_id_other_body_is_409_naming_the_id(
    client: TestClient, producer: FakeProducer
) -> None:
    """Reusing an id for another amount is a conflict, and nothing more is produced."""
    transfer_id = str(uuid.uuid4())
    assert client.post("/v1/transfers", json=body(transfer_id, "1.00")).status_code == 202
    response = client.post("/v1/transfers", json=body(transfer_id, "2.00"))
    assert response.status_code == 409
    assert transfer_id in response.json()["detail"]
    assert len(producer.records) == 1


def test_produce_failure_is_503_and_releases_the_key(
    client: TestClient, producer: FakeProducer, store: FakeStore
) -> None:
    """A transfer the broker did not acknowledge is not accepted, and its id stays usable."""
    transfer_id = str(uuid.uuid4())
    producer.fail = TimeoutError("no ack")
    response = client.post("/v1/transfers", json=body(transfer_id))
    assert response.status_code == 503
    assert "not accepted" in response.json()["detail"]
    assert store.values == {}
    producer.fail = None
    assert client.post("/v1/transfers", json=body(transfer_id)).status_code == 202
    assert len(producer.records) == 1


def test_accepted_key_is_compact_and_lives_the_window(client: TestClient, store: FakeStore) -> None:
    """After the ack the key says accepted for the idempotency window (24 h by default), in
    a value of a few dozen bytes: a 22-character digest, the state, the acceptance time."""
    transfer_id = str(uuid.uuid4())
    client.post("/v1/transfers", json=body(transfer_id))
    value = store.values[transfer_id]
    stored = idem.decode(value)
    assert stored.state == idem.ACCEPTED and stored.accepted_at_ms is not None
    assert len(stored.digest) == 22 and len(value) <= 40
    assert store.ttls[transfer_id] == idem.IDEM_WINDOW_MS_DEFAULT


def test_concurrent_twins_produce_exactly_once() -> None:
    """Eight concurrent accepts of one id: all accepted, one record, losers wait for the ack."""

    async def run() -> tuple[list[Verdict], int]:
        producer, store = FakeProducer(), FakeStore()
        producer.gate = asyncio.Event()
        acceptor = Acceptor(producer, store)
        transfer_id = str(uuid.uuid4())  # eight requests, one candidate (owner) each
        tasks = [asyncio.create_task(acceptor.accept([item(transfer_id)])) for _ in range(8)]
        await asyncio.sleep(0.05)  # every twin has claimed or is polling the pending key
        assert producer.records == []
        producer.gate.set()
        answers = await asyncio.gather(*tasks)
        return [a[0].verdict for a in answers], len(producer.records)

    verdicts, produced = asyncio.run(run())
    assert verdicts == [Verdict.ACCEPTED] * 8
    assert produced == 1


def test_winner_failure_lets_a_twin_claim_and_produce() -> None:
    """If the claim's winner fails, a waiting twin re-claims the freed id and produces it:
    one 503 (the failed winner), seven 202, exactly one record."""

    async def run() -> tuple[list[Verdict], int]:
        producer, store = FailingOnce(), FakeStore()
        producer.gate = asyncio.Event()
        acceptor = Acceptor(producer, store)
        transfer_id = str(uuid.uuid4())  # eight requests, one candidate (owner) each
        tasks = [asyncio.create_task(acceptor.accept([item(transfer_id)])) for _ in range(8)]
        await asyncio.sleep(0.05)
        producer.gate.set()
        answers = await asyncio.gather(*tasks)
        return sorted(a[0].verdict for a in answers), len(producer.records)

    verdicts, produced = asyncio.run(run())
    assert verdicts.count(Verdict.UNAVAILABLE) == 1
    assert verdicts.count(Verdict.ACCEPTED) == 7
    assert produced == 1


def test_a_claim_that_stays_pending_is_503_after_the_bounded_wait() -> None:
    """A twin whose owner never finishes is not answered 202: it gives up with 503."""

    async def run() -> Verdict:
        store = FakeStore()
        twin = item(str(uuid.uuid4()))
        owner = item(twin.transfer.id)  # the same body, claimed by a request that hangs
        store.values[twin.transfer.id] = owner.pending_value
        [answer] = await Acceptor(FakeProducer(), store, pending_wait_s=0.05).accept([twin])
        return answer.verdict

    assert asyncio.run(run()) is Verdict.UNAVAILABLE


def test_batch_claims_in_one_round_trip_and_dedupes_inside_itself() -> None:
    """A batch claims every id in one call; a repeated id inside it is accepted once with
    the same body and refused (409) with another."""

    async def run() -> tuple[list[Verdict], int, int]:
        producer, store = FakeProducer(), FakeStore()
        same, other = str(uuid.uuid4()), str(uuid.uuid4())
        items = [
            item(same),
            item(same),
            item(other, 100),
            item(other, 200),
            item(str(uuid.uuid4())),
        ]
        answers = await Acceptor(producer, store).accept(items)
        return [a.verdict for a in answers], len(producer.records), store.claim_calls

    verdicts, produced, claim_calls = asyncio.run(run())
    assert verdicts == [
        Verdict.ACCEPTED,
        Verdict.ACCEPTED,
        Verdict.ACCEPTED,
        Verdict.CONFLICT,
        Verdict.ACCEPTED,
    ]
    assert produced == 3
    assert claim_calls == 1


def test_pending_claims_expire_sooner_than_accepted_ones() -> None:
    """A claim left by a crashed request frees itself in a minute, not a week."""

    async def run() -> int:
        store = FakeStore()
        producer = FakeProducer()
        producer.gate = asyncio.Event()
        twin = item(str(uuid.uuid4()))
        task = asyncio.create_task(Acceptor(producer, store).accept([twin]))
        await asyncio.sleep(0.01)
        ttl = store.ttls[twin.transfer.id]
        producer.gate.set()
        await task
        return ttl

    assert asyncio.run(run()) == idem.IDEM_PENDING_TTL_MS < idem.IDEM_WINDOW_MS_DEFAULT


class ForgetfulStore(FakeStore):
    """A broken store that lets every claim win: what the machinery protects against."""

    async def claim(self, claims: Sequence[tuple[str, str]], ttl_ms: int) -> list[str | None]:
        return [None for _ in claims]


def test_positive_control_a_store_without_nx_would_produce_twice() -> None:
    """The twins test above can see duplicates: without SET NX, eight twins make eight."""

    async def run() -> int:
        producer = FakeProducer()
        acceptor = Acceptor(producer, ForgetfulStore())
        twin = item(str(uuid.uuid4()))
        await asyncio.gather(*(acceptor.accept([twin]) for _ in range(8)))
        return len(producer.records)

    assert asyncio.run(run()) == 8


def test_metadata_key_order_does_not_change_the_body(
    client: TestClient, producer: FakeProducer
) -> None:
    """Metadata is canonicalised (sorted keys), so a retry that reorders it is the same body;
    its numbers stay JSON numbers in the record."""
    transfer_id = str(uuid.uuid4())
    first = {**body(transfer_id), "metadata": {"a": 1, "b": {"c": 2.5, "d": "x"}}}
    again = {**body(transfer_id), "metadata": {"b": {"d": "x", "c": 2.5}, "a": 1}}
    assert client.post("/v1/transfers", json=first).status_code == 202
    assert client.post("/v1/transfers", json=again).status_code == 202
    [record] = producer.transfers
    assert record.metadata == {"a": 1, "b": {"c": 2.5, "d": "x"}}


class RepeatingStore(FakeStore):
    """Runs every claim twice and answers the second: a reply lost on a dropped connection,
    then the client's retry on a fresh one."""

    async def claim(self, claims: Sequence[tuple[str, str]], ttl_ms: int) -> list[str | None]:
        await super().claim(claims, ttl_ms)
        return await super().claim(claims, ttl_ms)


def test_a_repeated_claim_still_wins_and_produces_once() -> None:
    """The retried claim finds the request's own pending value: accepted, one record; a twin
    with the same body (another request) still waits for it rather than winning too."""

    async def run() -> tuple[list[Verdict], int]:
        producer = FakeProducer()
        acceptor = Acceptor(producer, RepeatingStore())
        transfer_id = str(uuid.uuid4())
        answers = await acceptor.accept([item(transfer_id), item(transfer_id)])
        return [a.verdict for a in answers], len(producer.records)

    verdicts, produced = asyncio.run(run())
    assert verdicts == [Verdict.ACCEPTED, Verdict.ACCEPTED]
    assert produced == 1


def test_each_round_reports_its_duration_including_the_ack_wait(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One observation per acceptance round, at least as long as the broker kept the ack."""
    seen: list[float] = []
    monkeypatch.setattr(observers, "_ROUNDS", [seen.append])

    async def run() -> None:
        producer, store = FakeProducer(), FakeStore()
        producer.gate = asyncio.Event()
        acceptor = Acceptor(producer, store)
        three = [item(str(uuid.uuid4())) for _ in range(3)]
        first = asyncio.create_task(acceptor.accept(three))
        await asyncio.sleep(0.05)
        producer.gate.set()
        await first
        await acceptor.accept([item(str(uuid.uuid4()))])

    asyncio.run(run())
    assert len(seen) == 2
    assert seen[0] >= 0.05


TEXTS = st.text(max_size=24)  # quotes, controls, non-ASCII; no surrogate (loads_exact refuses)


@given(
    ids=st.tuples(TEXTS, TEXTS, TEXTS, TEXTS),
    amount=st.integers(min_value=-(10**30), max_value=10**30),
    metadata=st.sampled_from([None, {}]),
)
def test_the_common_bodys_canonical_text_is_the_encoders(
    ids: tuple[str, str, str, str], amount: int, metadata: dict[str, str] | None
) -> None:
    """The digest of every accepted id depends on this text, and Redis keeps digests for a
    day: the written-out spelling of an immediate transfer without metadata must be, byte
    for byte, what the sorted-keys encoder gives for the same body."""
    transfer_id, debit, credit, currency = ids
    transfer = Transfer(transfer_id, debit, credit, amount, currency)
    encoded = idem._CANONICAL.encode(
        {
            "id": transfer_id,
            "debit": debit,
            "credit": credit,
            "amount": amount,
            "currency": currency,
            "metadata": None,
        }
    )
    assert candidate(transfer, metadata).canonical == encoded
