"""The OpenAPI document says what the server does: every status a route can answer and no
other, each reachable and shaped as documented, and request schemas as strict as the checks."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import given, settings
from hypothesis import strategies as st

from orion.domain.money import CURRENCY_EXPONENTS, AmountError, parse_amount
from orion.serve import schemas
from orion.serve.app import create_app
from orion.serve.convert import minor_or_zero
from orion.serve.ports import DependencyUnavailableError, TransferRow
from orion.serve.schemas import BATCH_REQUEST_TRANSFERS_MAX, REQUEST_BODY_BYTES_MAX
from tests.unit.serve.fakes import NOW, FakeLedger, FakeProducer, FakeStore, fake_deps

KEY = "k1"
AUTH = {"Authorization": f"Bearer {KEY}"}
WRONG_KEY = {"Authorization": "Bearer nope"}
TRANSFER = {
    "debit_account_id": "alice",
    "credit_account_id": "bob",
    "amount": "1",
    "currency": "RUB",
}
SEED = {"sender_account": "40817810000000001", "receiver_account": "40817810000000002", "amount": 1}
TOO_BIG = b'{"metadata": "' + b"x" * REQUEST_BODY_BYTES_MAX + b'"}'

# Every status each route can answer, read from the code: 413 only where a body is read
# (max_body_size is per route), 404 only where an id is looked up, 409 only where an id
# can be taken by another body (a batch answers conflicts per item, inside its 200).
DOCUMENTED: dict[tuple[str, str], set[int]] = {
    ("POST", "/v1/transfers"): {200, 202, 401, 409, 413, 422, 503},
    ("POST", "/v1/transfers/batch"): {200, 401, 413, 422, 503},
    ("GET", "/v1/transfers/{id}"): {200, 401, 404, 422, 503},
    ("POST", "/v1/transfers/{id}/post"): {200, 202, 401, 404, 409, 413, 422, 503},
    ("POST", "/v1/transfers/{id}/void"): {200, 202, 401, 404, 409, 422, 503},
    ("POST", "/v1/transfers/{id}/reverse"): {200, 202, 401, 404, 409, 413, 422, 503},
    ("POST", "/v1/accounts"): {200, 201, 401, 409, 413, 422, 503},
    ("GET", "/v1/accounts/{id}"): {200, 401, 404, 422, 503},
    ("GET", "/v1/accounts/{id}/entries"): {200, 401, 404, 422, 503},
    ("POST", "/transactions/"): {200, 401, 409, 413, 422, 503},
    ("GET", "/healthz"): {200},
    ("GET", "/readyz"): {200, 503},
}


@dataclass
class Api:
    """The app with API keys configured, once started and once not (dependencies absent)."""

    client: TestClient
    unstarted: TestClient
    ledger: FakeLedger
    producer: FakeProducer
    store: FakeStore
    monkeypatch: pytest.MonkeyPatch

    def all_down(self) -> None:
        """Every dependency fails as the real adapters do, with DependencyUnavailableError."""

        async def unavailable(*_: object) -> Any:
            raise DependencyUnavailableError("fake", "down")

        self.producer.fail = DependencyUnavailableError("kafka", "down")
        for name in ("create_account", "get_account", "list_entries", "get_transfer"):
            self.monkeypatch.setattr(self.ledger, name, unavailable)
        self.monkeypatch.setattr(self.store, "get", unavailable)


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    deps = fake_deps(api_keys=frozenset({KEY}))
    unstarted = TestClient(create_app(fake_deps(api_keys=frozenset({KEY}))), headers=AUTH)
    with TestClient(create_app(deps), headers=AUTH) as client:
        yield Api(
            client,
            unstarted,
            cast(FakeLedger, deps.ledger),
            cast(FakeProducer, deps.producer),
            cast(FakeStore, deps.idempotency),
            monkeypatch,
        )


def _new_id() -> str:
    return str(uuid.uuid4())


def _settled_within_wait(api: Api) -> Response:
    transfer_id = _new_id()
    api.ledger.transfers[transfer_id] = TransferRow(
        transfer_id, "completed", None, "alice", "bob", 100, "RUB", NOW, NOW
    )
    return api.client.post("/v1/transfers?wait=1", json={**TRANSFER, "id": transfer_id})


def _taken(api: Api, path: str, body: dict[str, Any], changed: dict[str, Any]) -> Response:
    assert api.client.post(path, json=body).status_code in (200, 201, 202)
    return api.client.post(path, json={**body, **changed})


def _accepted_then_read(api: Api) -> Response:
    transfer_id = _new_id()
    api.client.post("/v1/transfers", json={**TRANSFER, "id": transfer_id})
    return api.client.get(f"/v1/transfers/{transfer_id}")


def _created_then_read(api: Api, suffix: str) -> Response:
    api.client.post("/v1/accounts", json={"id": "acc", "currency": "RUB"})
    return api.client.get(f"/v1/accounts/acc{suffix}")


def _down(api: Api, method: str, path: str, **kwargs: Any) -> Response:
    api.all_down()
    return api.client.request(method, path, **kwargs)


def _big(api: Api, path: str) -> Response:
    return api.client.post(path, content=TOO_BIG, headers={"content-type": "application/json"})


def _settled(api: Api, kind: str = "pending", status: str = "pending", amount: int = 100) -> str:
    """A settled row of `kind` in the fake ledger (a hold by default); its id."""
    transfer_id = _new_id()
    api.ledger.transfers[transfer_id] = TransferRow(
        transfer_id, status, None, "alice", "bob", amount, "RUB", NOW, NOW, kind
    )
    return transfer_id


def _act(api: Api, action: str, target: str, **kwargs: Any) -> Response:
    return api.client.post(f"/v1/transfers/{target}/{action}", **kwargs)


def _acted_then_settled(api: Api, action: str) -> Response:
    """An action accepted, then its row settled: `?wait` answers it at once (200)."""
    target = _settled(api, *(("immediate", "completed") if action == "reverse" else ()))
    body = {"json": {"id": _new_id()}} if action == "reverse" else {}  # the same reversal
    accepted = _act(api, action, target, **body)
    assert accepted.status_code == 202, accepted.text
    action_id = accepted.json()["id"]
    api.ledger.transfers[action_id] = TransferRow(
        action_id, "completed", None, "bob", "alice", 100, "RUB", NOW, NOW, "reversal", target
    )
    return _act(api, action, target, params={"wait": 1}, **body)


def _action_triggers(action: str) -> list[tuple[str, str, int, Trigger]]:
    """Every status of POST /v1/transfers/{id}/<action>, against a hold (post, void) or a
    completed transfer (reverse)."""
    route = f"/v1/transfers/{{id}}/{action}"
    ready = ("immediate", "completed") if action == "reverse" else ()
    done = ("immediate", "rejected") if action == "reverse" else ("pending", "voided")
    triggers: list[tuple[str, str, int, Trigger]] = [
        ("POST", route, 202, lambda a: _act(a, action, _settled(a, *ready))),
        ("POST", route, 200, lambda a: _acted_then_settled(a, action)),
        ("POST", route, 401, lambda a: _act(a, action, _settled(a, *ready), headers=WRONG_KEY)),
        ("POST", route, 404, lambda a: _act(a, action, _new_id())),
        ("POST", route, 409, lambda a: _act(a, action, _settled(a, *done))),
        ("POST", route, 422, lambda a: _act(a, action, "not-a-uuid")),
        ("POST", route, 503, lambda a: _down(a, "POST", f"/v1/transfers/{_new_id()}/{action}")),
    ]
    if action != "void":
        big = {"content": TOO_BIG, "headers": {"content-type": "application/json"}}
        triggers.append(("POST", route, 413, lambda a: _act(a, action, _new_id(), **big)))
    return triggers


Trigger = Callable[[Api], Response]
UUID_PATH = "/v1/transfers/5f0c3b0e-2f7e-4d1a-9f3e-1a2b3c4d5e6f"
BATCH = {"transfers": [TRANSFER]}
ACCOUNT = {"id": "acc", "currency": "RUB"}
SEED_WITH_ID = {**SEED, "transaction_id": "5f0c3b0e-2f7e-4d1a-9f3e-1a2b3c4d5e6f"}
# (method, route, status, how to get it): at least one request per documented status.
TRIGGERS: list[tuple[str, str, int, Trigger]] = [
    ("POST", "/v1/transfers", 202, lambda a: a.client.post("/v1/transfers", json=TRANSFER)),
    ("POST", "/v1/transfers", 200, _settled_within_wait),
    (
        "POST",
        "/v1/transfers",
        401,
        lambda a: a.client.post("/v1/transfers", json=TRANSFER, headers=WRONG_KEY),
    ),
    (
        "POST",
        "/v1/transfers",
        409,
        lambda a: _taken(a, "/v1/transfers", {**TRANSFER, "id": _new_id()}, {"amount": "2"}),
    ),
    ("POST", "/v1/transfers", 413, lambda a: _big(a, "/v1/transfers")),
    (
        "POST",
        "/v1/transfers",
        422,
        lambda a: a.client.post("/v1/transfers", json={**TRANSFER, "amount": "1e3"}),
    ),
    ("POST", "/v1/transfers", 503, lambda a: _down(a, "POST", "/v1/transfers", json=TRANSFER)),
    (
        "POST",
        "/v1/transfers/batch",
        200,
        lambda a: a.client.post("/v1/transfers/batch", json=BATCH),
    ),
    (
        "POST",
        "/v1/transfers/batch",
        401,
        lambda a: a.client.post("/v1/transfers/batch", json=BATCH, headers=WRONG_KEY),
    ),
    ("POST", "/v1/transfers/batch", 413, lambda a: _big(a, "/v1/transfers/batch")),
    (
        "POST",
        "/v1/transfers/batch",
        422,
        lambda a: a.client.post("/v1/transfers/batch", json={"transfers": []}),
    ),
    (
        "POST",
        "/v1/transfers/batch",
        503,
        lambda a: a.unstarted.post("/v1/transfers/batch", json=BATCH),
    ),
    ("GET", "/v1/transfers/{id}", 200, _accepted_then_read),
    ("GET", "/v1/transfers/{id}", 401, lambda a: a.client.get(UUID_PATH, headers=WRONG_KEY)),
    ("GET", "/v1/transfers/{id}", 404, lambda a: a.client.get(UUID_PATH)),
    ("GET", "/v1/transfers/{id}", 422, lambda a: a.client.get("/v1/transfers/a%00b")),
    ("GET", "/v1/transfers/{id}", 503, lambda a: _down(a, "GET", UUID_PATH)),
    ("POST", "/v1/accounts", 201, lambda a: a.client.post("/v1/accounts", json=ACCOUNT)),
    ("POST", "/v1/accounts", 200, lambda a: _taken(a, "/v1/accounts", ACCOUNT, {})),
    (
        "POST",
        "/v1/accounts",
        401,
        lambda a: a.client.post("/v1/accounts", json=ACCOUNT, headers=WRONG_KEY),
    ),
    (
        "POST",
        "/v1/accounts",
        409,
        lambda a: _taken(a, "/v1/accounts", ACCOUNT, {"currency": "EUR"}),
    ),
    ("POST", "/v1/accounts", 413, lambda a: _big(a, "/v1/accounts")),
    (
        "POST",
        "/v1/accounts",
        422,
        lambda a: a.client.post("/v1/accounts", json={**ACCOUNT, "id": "@x"}),
    ),
    ("POST", "/v1/accounts", 503, lambda a: _down(a, "POST", "/v1/accounts", json=ACCOUNT)),
    ("GET", "/v1/accounts/{id}", 200, lambda a: _created_then_read(a, "")),
    (
        "GET",
        "/v1/accounts/{id}",
        401,
        lambda a: a.client.get("/v1/accounts/acc", headers=WRONG_KEY),
    ),
    ("GET", "/v1/accounts/{id}", 404, lambda a: a.client.get("/v1/accounts/nobody")),
    ("GET", "/v1/accounts/{id}", 422, lambda a: a.client.get("/v1/accounts/a%00b")),
    ("GET", "/v1/accounts/{id}", 503, lambda a: _down(a, "GET", "/v1/accounts/acc")),
    ("GET", "/v1/accounts/{id}/entries", 200, lambda a: _created_then_read(a, "/entries")),
    (
        "GET",
        "/v1/accounts/{id}/entries",
        401,
        lambda a: a.client.get("/v1/accounts/acc/entries", headers=WRONG_KEY),
    ),
    (
        "GET",
        "/v1/accounts/{id}/entries",
        404,
        lambda a: a.client.get("/v1/accounts/nobody/entries"),
    ),
    (
        "GET",
        "/v1/accounts/{id}/entries",
        422,
        lambda a: a.client.get("/v1/accounts/acc/entries?limit=0"),
    ),
    (
        "GET",
        "/v1/accounts/{id}/entries",
        503,
        lambda a: _down(a, "GET", "/v1/accounts/acc/entries"),
    ),
    ("POST", "/transactions/", 200, lambda a: a.client.post("/transactions/", json=SEED)),
    (
        "POST",
        "/transactions/",
        401,
        lambda a: a.client.post("/transactions/", json=SEED, headers=WRONG_KEY),
    ),
    (
        "POST",
        "/transactions/",
        409,
        lambda a: _taken(a, "/transactions/", SEED_WITH_ID, {"amount": 2}),
    ),
    ("POST", "/transactions/", 413, lambda a: _big(a, "/transactions/")),
    (
        "POST",
        "/transactions/",
        422,
        lambda a: a.client.post("/transactions/", json={**SEED, "amount": "1e3"}),
    ),
    ("POST", "/transactions/", 503, lambda a: _down(a, "POST", "/transactions/", json=SEED)),
    *_action_triggers("post"),
    *_action_triggers("void"),
    *_action_triggers("reverse"),
    ("GET", "/healthz", 200, lambda a: a.unstarted.get("/healthz")),
    ("GET", "/readyz", 200, lambda a: a.client.get("/readyz")),
    ("GET", "/readyz", 503, lambda a: a.unstarted.get("/readyz")),
]


def _documented_statuses() -> dict[tuple[str, str], set[int]]:
    paths = create_app(fake_deps()).openapi()["paths"]
    return {
        (method.upper(), path): {int(status) for status in operation["responses"]}
        for path, operations in paths.items()
        for method, operation in operations.items()
    }


def test_openapi_documents_exactly_the_reachable_statuses() -> None:
    """Each route's documented statuses are the ones its code can answer, no more, no less
    (400 is gone: the body parser answers 422 for anything FastAPI would call 400)."""
    assert _documented_statuses() == DOCUMENTED


def test_every_documented_status_has_a_trigger() -> None:
    """The reachability test below covers each documented status of each route."""
    covered: dict[tuple[str, str], set[int]] = {}
    for method, path, status, _ in TRIGGERS:
        covered.setdefault((method, path), set()).add(status)
    assert covered == DOCUMENTED


@pytest.mark.parametrize(
    ("method", "path", "status", "trigger"),
    TRIGGERS,
    ids=[f"{m} {p} {s}" for m, p, s, _ in TRIGGERS],
)
def test_each_documented_status_is_reachable_and_shaped_as_documented(
    api: Api, method: str, path: str, status: int, trigger: Trigger
) -> None:
    """A real request through the app gets the status, and its body validates against the
    model the OpenAPI names for that status and content type."""
    response = trigger(api)
    assert response.status_code == status, response.text
    documented = create_app(fake_deps()).openapi()["paths"][path][method.lower()]
    content = documented["responses"][str(status)]["content"]
    media_type = response.headers["content-type"].split(";")[0]
    assert media_type in content, (media_type, list(content))
    ref = content[media_type]["schema"].get("$ref")
    if ref is not None:
        model = getattr(schemas, ref.rsplit("/", 1)[1])
        model.model_validate(response.json())


# --- Request schemas: as strict as the server where JSON Schema can say it ---


@pytest.fixture(scope="module")
def components() -> dict[str, Any]:
    schemas_: dict[str, Any] = create_app(fake_deps()).openapi()["components"]["schemas"]
    return schemas_


@pytest.mark.parametrize("name", ["TransferIn", "BatchIn", "AccountIn", "SeedTransactionIn"])
def test_request_bodies_forbid_unknown_properties(components: dict[str, Any], name: str) -> None:
    """extra="forbid" is published: a fuzzer knows an unknown key is invalid."""
    assert components[name]["additionalProperties"] is False


def test_currency_is_the_enum_of_supported_currencies(components: dict[str, Any]) -> None:
    """The currency field lists exactly the currencies the money rules accept, sorted."""
    for name in ("TransferIn", "AccountIn"):
        currency = components[name]["properties"]["currency"]
        assert currency["enum"] == sorted(CURRENCY_EXPONENTS)


def test_ids_and_batches_carry_their_bounds(components: dict[str, Any]) -> None:
    """Account ids, seed accounts and the batch size carry the limits the server checks."""
    debit = components["TransferIn"]["properties"]["debit_account_id"]
    assert (debit["pattern"], debit["minLength"], debit["maxLength"]) == (
        "^[A-Za-z0-9_.:-]{1,64}$",
        1,
        64,
    )
    sender = components["SeedTransactionIn"]["properties"]["sender_account"]["anyOf"]
    assert sender[0] == {"type": "string", "pattern": "^[0-9]{17}$"}
    assert (sender[1]["minimum"], sender[1]["exclusiveMaximum"]) == (10**16, 10**17)
    transfers = components["BatchIn"]["properties"]["transfers"]
    assert (transfers["minItems"], transfers["maxItems"]) == (1, BATCH_REQUEST_TRANSFERS_MAX)
    assert transfers["items"] == {"$ref": "#/components/schemas/TransferIn"}


def test_account_path_ids_admit_system_accounts() -> None:
    """GET /v1/accounts/{id} (and its entries) publish the body rule plus a leading "@"."""
    paths = create_app(fake_deps()).openapi()["paths"]
    for path in ("/v1/accounts/{id}", "/v1/accounts/{id}/entries"):
        [param] = [p for p in paths[path]["get"]["parameters"] if p["name"] == "id"]
        assert param["schema"]["pattern"] == "^@?[A-Za-z0-9_.:-]{1,64}$"


def _amount_patterns(components: dict[str, Any]) -> tuple[str, str]:
    amount = components["TransferIn"]["properties"]["amount"]["anyOf"][0]
    limit = components["AccountIn"]["properties"]["overdraft_limit"]["anyOf"][0]
    for text in (amount, limit):
        assert "(?=" not in text["pattern"]  # no lookahead: fuzzers generate from it
    return amount["pattern"], limit["pattern"]


def _matches(ecma_pattern: str, text: str) -> bool:
    # ECMA's "$" (no m flag) is the end of input; Python's would also match before a "\n".
    return re.fullmatch(ecma_pattern.removeprefix("^").removesuffix("$"), text) is not None


def _server_accepts(text: str, zero_allowed: bool) -> bool:
    try:
        if zero_allowed:
            minor_or_zero(text, "BHD", "overdraft_limit")
        else:
            parse_amount(text, "BHD")
    except AmountError:
        return False
    return True


# Texts around the rule's edges: signs, exponents, empty parts, zeros; at most 3 decimals,
# so a currency with 3 (BHD) never refuses one for its precision.
AMOUNT_TEXTS = (
    st.from_regex(r"\A[-+]?[0-9]{0,4}(\.[0-9]{0,3})?([eE][-+]?[0-9])?\s?\Z")
    | st.text(alphabet="0123456789.-eE ", max_size=6)
).filter(lambda text: re.search(r"\.[0-9]{4}", text) is None)


@settings(max_examples=500, deadline=None)
@given(text=AMOUNT_TEXTS)
def test_amount_patterns_say_what_the_server_accepts(components: dict[str, Any], text: str) -> None:
    """The published amount patterns (positive; zero or positive) accept a short text
    exactly when the server does, so fuzzers and clients can trust them."""
    positive, zero_or_positive = _amount_patterns(components)
    assert _matches(positive, text) == _server_accepts(text, zero_allowed=False), text
    assert _matches(zero_or_positive, text) == _server_accepts(text, zero_allowed=True), text


def test_amount_numbers_are_bounded_like_the_server(components: dict[str, Any]) -> None:
    """As a JSON number an amount lies between the smallest minor unit of any currency and
    the largest amount any currency allows (account fields also take 0): the bounds are
    reachable, and what lies outside them the server refuses in every currency."""
    amount = components["TransferIn"]["properties"]["amount"]["anyOf"]
    limit = components["AccountIn"]["properties"]["overdraft_limit"]["anyOf"]
    assert amount[1] == limit[1] == {"type": "number", "minimum": 0.001, "maximum": 10**15}
    assert (len(amount), limit[2]) == (2, {"type": "integer", "minimum": 0, "maximum": 0})
    assert parse_amount(10**15, "JPY") == 10**15
    assert parse_amount(Decimal("0.001"), "BHD") == 1
    for currency in CURRENCY_EXPONENTS:
        for outside in (Decimal("0.0009"), 10**15 + 1):
            with pytest.raises(AmountError):
                parse_amount(outside, currency)
