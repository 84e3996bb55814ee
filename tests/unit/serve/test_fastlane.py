"""The fast lane changes no answer: every request gets the same status and body with it as
without it, and the requests it exists for never reach FastAPI's route."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from orion.serve.app import create_app
from orion.serve.fastlane import _LANES
from orion.serve.routes import seed, transfers
from orion.serve.schemas import REQUEST_BODY_BYTES_MAX, SeedQueued, TransferAccepted
from tests.unit.serve.fakes import FakeProducer, fake_deps

KEY = "k3y"
ID = "6f1c1d1e-8f44-4c1b-9a51-2b8f0f6a5e01"
ID2 = "0b9e4d8a-54c3-4f0e-8d7e-3a6f9f1b2c02"
ID3 = "3c2d1e0f-9a8b-4c7d-8e6f-5a4b3c2d1e03"
SEED = {
    "sender_account": "40817810000000001",
    "receiver_account": "40817810000000002",
    "amount": "12.30",
}
TRANSFER = {
    "id": ID2,
    "debit_account_id": "a-1",
    "credit_account_id": "a-2",
    "amount": "12.30",
    "currency": "RUB",
}
AUTH = {"Authorization": f"Bearer {KEY}"}
JSON = {"Content-Type": "application/json"}
# (method, path, raw body, headers): what a client may send, good and bad.
CASES: list[tuple[str, str, bytes, dict[str, str]]] = [
    ("POST", "/transactions/", json.dumps(SEED | {"transaction_id": ID}).encode(), JSON),
    ("POST", "/transactions/", json.dumps(SEED | {"transaction_id": ID}).encode(), {}),
    ("POST", "/transactions/", json.dumps(SEED | {"amount": "1e3"}).encode(), JSON),
    ("POST", "/transactions/", json.dumps(SEED | {"amount": "-1"}).encode(), JSON),
    (
        "POST",
        "/transactions/",
        json.dumps(SEED | {"receiver_account": SEED["sender_account"]}).encode(),
        JSON,
    ),
    ("POST", "/transactions/", json.dumps(SEED | {"extra": 1}).encode(), JSON),
    ("POST", "/transactions/", json.dumps({"amount": "1"}).encode(), JSON),
    ("POST", "/transactions/", b'{"sender_account": "a", "sender_account": "b"}', JSON),
    ("POST", "/transactions/", b'{"sender_account": "a\\u0000"}', JSON),
    ("POST", "/transactions/", b"{not json", JSON),
    ("POST", "/transactions/", b"", JSON),
    ("POST", "/transactions/", json.dumps(SEED).encode(), {"Content-Type": "text/plain"}),
    ("POST", "/transactions/", b" " * (REQUEST_BODY_BYTES_MAX + 1), JSON),
    ("POST", "/v1/transfers", json.dumps(TRANSFER).encode(), JSON),
    ("POST", "/v1/transfers", json.dumps(TRANSFER | {"amount": "12.30"}).encode(), JSON),
    ("POST", "/v1/transfers", json.dumps(TRANSFER | {"amount": "99"}).encode(), JSON),  # 409
    ("POST", "/v1/transfers?wait=0.01", json.dumps(TRANSFER).encode(), JSON),
    ("POST", "/v1/transfers", json.dumps(TRANSFER | {"currency": "XXX"}).encode(), JSON),
    ("POST", "/v1/transfers", b'{"metadata": {"x": "\\ud800"}}', JSON),
    (
        "POST",
        "/v1/transfers",
        json.dumps(TRANSFER | {"id": ID3, "mode": "pending", "timeout_s": 60}).encode(),
        JSON,
    ),
    ("POST", "/v1/transfers", json.dumps(TRANSFER | {"id": ID3, "timeout_s": 60}).encode(), JSON),
    ("POST", "/v1/transfers", json.dumps(TRANSFER | {"mode": "later"}).encode(), JSON),
    ("POST", "/v1/transfers/batch", json.dumps({"transfers": [TRANSFER]}).encode(), JSON),
    ("GET", "/v1/transfers", b"", {}),
]


def _answers(fast_lane: bool, api_keys: frozenset[str], extra: dict[str, str]) -> list[Any]:
    deps = fake_deps(api_keys)
    with TestClient(create_app(deps, fast_lane=fast_lane)) as client:
        answers = []
        for method, path, body, headers in CASES:
            done = client.request(method, path, content=body, headers=headers | extra)
            head = (done.headers.get("content-type"), done.headers.get("content-length"))
            answers.append((method, path, done.status_code, head, done.text))
        producer = deps.producer
        assert isinstance(producer, FakeProducer)
        producer.fail = RuntimeError("broker gone")
        done = client.post("/transactions/", json=SEED, headers=extra)
        answers.append(("503", done.status_code, done.text))
    return answers


@pytest.mark.parametrize(
    ("api_keys", "extra"),
    [
        (frozenset(), {}),
        (frozenset({KEY}), AUTH),
        (frozenset({KEY}), {"Authorization": f"bearer {KEY}"}),
        (frozenset({KEY}), {"Authorization": "Bearer wrong"}),
        (frozenset({KEY}), {}),
    ],
)
def test_every_answer_is_the_same_with_and_without_the_lane(
    api_keys: frozenset[str], extra: dict[str, str]
) -> None:
    with_lane, without = _answers(True, api_keys, extra), _answers(False, api_keys, extra)
    # A body without an id gets a fresh uuid4 each time: compare those answers' shapes.
    for lane_answer, route_answer in zip(with_lane, without, strict=True):
        assert _shape(lane_answer) == _shape(route_answer)
    statuses = {a[2] for a in with_lane[:-1]}
    authorized = not api_keys or extra.get("Authorization", "").lower() == f"bearer {KEY}"
    assert statuses >= ({200, 202, 409, 413, 422} if authorized else {401}), statuses
    assert with_lane[-1][1] == (503 if authorized else 401)


def _shape(answer: tuple[Any, ...]) -> tuple[Any, ...]:
    text = answer[-1]
    try:
        body = json.loads(text)
    except ValueError:
        return answer
    if isinstance(body, dict):  # fresh uuid4s differ run to run; the fixed ids must not
        body = {k: ("<uuid>" if _is_uuid(v) and v not in (ID, ID2) else v) for k, v in body.items()}
    return (*answer[:-1], body)


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


@pytest.fixture
def route_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Records each call of the FastAPI routes' conversions (the lane has its own)."""
    calls: list[str] = []
    for module, name in ((seed, "seed_candidate"), (transfers, "transfer_candidate")):
        original = getattr(module, name)

        def recording(*args: Any, _original: Any = original, _name: str = name) -> Any:
            calls.append(_name)
            return _original(*args)

        monkeypatch.setattr(module, name, recording)
    yield calls


def test_the_lane_answers_valid_ingest_requests_and_passes_on_the_rest(
    route_calls: list[str],
) -> None:
    deps = fake_deps()
    with TestClient(create_app(deps)) as client:
        assert client.post("/transactions/", json=SEED).status_code == 200
        assert client.post("/v1/transfers", json=TRANSFER).status_code == 202
        assert route_calls == []  # neither reached FastAPI
        same = SEED | {
            "receiver_account": SEED["sender_account"]
        }  # refused by the conversion: FastAPI says so
        assert client.post("/transactions/", json=same).status_code == 422
        assert client.post("/v1/transfers?wait=0.01", json=TRANSFER).status_code == 202
        assert route_calls == ["seed_candidate", "transfer_candidate"]
    producer = deps.producer
    assert isinstance(producer, FakeProducer)
    assert len(producer.records) == 2  # the same id twice was produced once


ANSWER_MODELS: dict[str, Any] = {
    "/transactions/": lambda transfer_id: SeedQueued(transaction_id=transfer_id),
    "/v1/transfers": lambda transfer_id: TransferAccepted(id=transfer_id),
}


@given(
    path=st.sampled_from(sorted(ANSWER_MODELS)),
    transfer_id=st.text(st.characters(exclude_categories=("Cs",)), max_size=40),
)
def test_the_lanes_success_body_is_the_response_models_as_fastapi_renders_it(
    path: str, transfer_id: str
) -> None:
    """Any id, quotes, backslashes, controls and non-ASCII included: the bytes the lane
    writes are those of the route's response model through JSONResponse."""
    model: BaseModel = ANSWER_MODELS[path](transfer_id)
    rendered = JSONResponse(model.model_dump(mode="json")).body
    assert _LANES[path].answer(transfer_id) == rendered
    assert set(_LANES) == set(ANSWER_MODELS)
