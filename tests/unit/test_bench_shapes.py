"""What the benchmark sends (load/shapes.py, load/plan.py) and how it reads the answers
(load/client.py classify): the seed's sender/receiver mapping, run ids, bodies the real
request models accept."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from pathlib import Path

import pytest

from load.client import OK, classify
from load.plan import BenchOptions, PlanError, make_plan, warmup_options
from load.shapes import (
    SEED_FIRST_ACCOUNT,
    Endpoint,
    LoadShape,
    Pairing,
    Scenario,
    index_of,
    mirror_pair,
    new_id_prefix,
    random_pair,
    transfer_id,
)
from orion.serve.schemas import BatchIn, SeedTransactionIn, TransferIn

LOCAL = "http://127.0.0.1:8000"


def _shape(endpoint: Endpoint, count: int, per_request: int = 1, accounts: int = 10) -> LoadShape:
    return LoadShape(
        endpoint, count, per_request, accounts, SEED_FIRST_ACCOUNT, "RUB", Pairing.MIRROR,
        new_id_prefix(),
    )  # fmt: skip


def test_seed_mapping_sends_i_to_n_minus_1_minus_i_over_the_pool() -> None:
    """N = 100,000 over A = 10,000: transfer 0 is account 0 -> 9,999, transfer 1 is 1 ->
    9,998, transfer 10,000 wraps to 0 -> 9,999 again; the last is 9,999 -> 0."""
    n, a = 100_000, 10_000
    assert mirror_pair(0, n, a) == (0, 9_999)
    assert mirror_pair(1, n, a) == (1, 9_998)
    assert mirror_pair(10_000, n, a) == (0, 9_999)
    assert mirror_pair(n - 1, n, a) == (9_999, 0)
    assert all(s != r for s, r in (mirror_pair(i, n, a) for i in range(n)))


def test_seed_mapping_is_balanced_so_repeated_runs_do_not_drain_accounts() -> None:
    """Each account sends as many transfers as it receives over a whole run."""
    n, a = 20_000, 1_000
    sent, received = Counter[int](), Counter[int]()
    for i in range(n):
        s, r = mirror_pair(i, n, a)
        sent[s] += 1
        received[r] += 1
    assert sent == received


def test_seed_mapping_moves_the_receiver_when_it_would_be_the_sender() -> None:
    """Odd N: the middle transfer would pay itself (the API refuses that): next account."""
    assert mirror_pair(2, 5, 10) == (2, 3)
    assert mirror_pair(9, 10, 10) == (9, 0)


def test_seed_body_is_the_original_contract_with_17_digit_accounts() -> None:
    shape = _shape(Endpoint.SEED, count=100, accounts=10)
    body = json.loads(shape.body(3))
    assert body == {
        "sender_account": str(SEED_FIRST_ACCOUNT + 3),
        "receiver_account": str(SEED_FIRST_ACCOUNT + 6),  # (100 - 1 - 3) % 10
        "amount": 1,
        "transaction_id": transfer_id(shape.id_prefix, 3),
    }
    assert body["sender_account"] == "40817810111322214"
    SeedTransactionIn.model_validate(body)  # what the API itself will check


def test_transfer_and_batch_bodies_pass_the_apis_request_models() -> None:
    one = _shape(Endpoint.TRANSFER, count=5)
    TransferIn.model_validate(json.loads(one.body(4)))
    batch = _shape(Endpoint.BATCH, count=1_050, per_request=500)
    assert batch.requests == 3
    assert batch.transfers_of(2) == range(1_000, 1_050)
    last = json.loads(batch.body(2))
    BatchIn.model_validate(last)
    assert [t["id"] for t in last["transfers"]][:1] == [transfer_id(batch.id_prefix, 1_000)]
    for item in last["transfers"]:
        TransferIn.model_validate(item)


def test_run_ids_are_uuid4s_whose_last_8_hex_digits_are_the_index() -> None:
    prefix = new_id_prefix()
    for index in (0, 1, 255, 999_999, 2**32 - 1):
        text = transfer_id(prefix, index)
        assert str(uuid.UUID(text)) == text and uuid.UUID(text).version == 4
        assert index_of(prefix, text) == index
    assert index_of(new_id_prefix(), transfer_id(prefix, 7)) is None  # another run's id
    assert index_of(prefix, "not-a-uuid") is None


def test_random_pairs_are_distinct_in_range_and_repeatable() -> None:
    pairs = [random_pair(i, 1_000, seed=1) for i in range(5_000)]
    assert all(s != r and 0 <= s < 1_000 and 0 <= r < 1_000 for s, r in pairs)
    assert pairs == [random_pair(i, 1_000, seed=1) for i in range(5_000)]
    assert len({s for s, _ in pairs}) > 950  # spread over (nearly) the whole pool


def test_classify_counts_only_the_endpoints_success_status_as_accepted() -> None:
    assert classify(Endpoint.SEED, 200, b"{}", range(3, 4)).accepted == [3]
    assert classify(Endpoint.TRANSFER, 202, b"{}", range(3, 4)).kind == OK
    failed = classify(Endpoint.SEED, 503, b"{}", range(3, 4))
    assert (failed.kind, failed.accepted) == ("http 503", [])


def test_classify_batch_accepts_item_by_item() -> None:
    answer = {
        "results": [
            {"index": 0, "id": "a", "status": "accepted"},
            {"index": 1, "status": "error", "error": {}, "http_status": 503},
            {"index": 2, "id": "c", "status": "accepted"},
        ]
    }
    got = classify(Endpoint.BATCH, 200, json.dumps(answer).encode(), range(500, 503))
    assert got.kind == OK
    assert got.accepted == [500, 502]
    assert got.item_errors == Counter({"item 503": 1})
    assert classify(Endpoint.BATCH, 200, b"not json", range(1)).kind == "bad batch answer"


def test_plan_defaults_per_scenario() -> None:
    seed = make_plan(BenchOptions(Scenario.SEED), LOCAL, "RUB")
    assert (seed.shape.count, seed.clients, seed.shape.accounts) == (100_000, 200, 10_000)
    assert seed.shape.endpoint is Endpoint.SEED and seed.shape.pairing is Pairing.MIRROR
    full = make_plan(BenchOptions(Scenario.SEED, full=True), LOCAL, "RUB")
    assert full.shape.count == 1_000_000
    contention = make_plan(BenchOptions(Scenario.CONTENTION), LOCAL, "RUB")
    assert contention.shape.accounts == 1_000 and contention.shape.pairing is Pairing.RANDOM
    batch = make_plan(BenchOptions(Scenario.BATCH), LOCAL, "RUB")
    assert (batch.clients, batch.shape.per_request, batch.shape.requests) == (4, 500, 200)
    latency = make_plan(BenchOptions(Scenario.LATENCY), LOCAL, "RUB")
    assert latency.open_loop and latency.shape.count == 30_000


def test_plan_refuses_anything_but_loopback_or_the_lab_and_out_of_range_options() -> None:
    for elsewhere in ("http://10.0.0.5:8000", "http://10.77.1.2:8000", "http://example.com"):
        with pytest.raises(PlanError, match="loopback"):
            make_plan(BenchOptions(Scenario.SEED, base_url=elsewhere), LOCAL, "RUB")
    lab = make_plan(BenchOptions(Scenario.SEED, base_url="http://10.77.0.2:8000"), LOCAL, "RUB")
    assert lab.base_url == "http://10.77.0.2:8000"
    with pytest.raises(PlanError, match="batch-size"):
        make_plan(BenchOptions(Scenario.BATCH, batch_size=1_001), LOCAL, "RUB")
    with pytest.raises(PlanError, match="accounts"):
        make_plan(BenchOptions(Scenario.SEED, accounts=1), LOCAL, "RUB")


def test_a_warmup_is_the_same_scenario_shape_and_rate_with_its_own_count_and_no_checks(
    tmp_path: Path,
) -> None:
    asked = BenchOptions(
        Scenario.LATENCY, rate_per_s=500.0, duration_s=30.0, baselines=True, warmup=2_000
    )
    warm = warmup_options(asked, tmp_path)
    plan = make_plan(warm, LOCAL, "RUB")
    assert plan.open_loop and plan.shape.count == 2_000 and warm.rate_per_s == 500.0
    assert (warm.baselines, warm.audit, warm.warmup, warm.out_root) == (False, False, 0, tmp_path)
    batch = make_plan(
        warmup_options(BenchOptions(Scenario.BATCH, count=60_000, warmup=5_000), tmp_path),
        LOCAL,
        "RUB",
    )
    assert (batch.shape.count, batch.shape.per_request, batch.clients) == (5_000, 500, 4)
    measured = make_plan(asked, LOCAL, "RUB")
    assert measured.shape.count == 15_000 and measured.describe()["warmup"] == 2_000
    assert make_plan(BenchOptions(Scenario.SEED), LOCAL, "RUB").describe()["warmup"] is None


def test_plan_refuses_a_warmup_out_of_range_or_for_the_generator() -> None:
    with pytest.raises(PlanError, match="warmup"):
        make_plan(BenchOptions(Scenario.SEED, warmup=-1), LOCAL, "RUB")
    with pytest.raises(PlanError, match="warmup"):
        make_plan(BenchOptions(Scenario.GENERATOR, warmup=1_000), LOCAL, "RUB")
