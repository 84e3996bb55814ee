"""Bodies are parsed strictly: duplicate keys, NUL, lone surrogates, bad UTF-8, deep nesting
and huge objects are a short 422 naming the field, never a 400, a 500 or "last one wins"."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.types import Message

from orion.serve.app import create_app
from orion.serve.errors import PROBLEMS_MAX, BodyError
from orion.serve.jsonbody import CLIENT_GONE_STATUS, OBJECT_KEYS_MAX, loads_exact
from tests.unit.serve.fakes import FakeLedger, FakeProducer, fake_deps

JSON = {"content-type": "application/json"}
TRANSFER = '"debit_account_id": "alice", "credit_account_id": "bob", "currency": "RUB"'
SEED = '"sender_account": "40817810000000001", "receiver_account": "40817810000000002"'
REPLY_BYTES_MAX = 4096  # "a few KB": what a 422 to a hostile body may weigh at most


def post_raw(client: TestClient, path: str, raw: bytes, headers: dict[str, str] = JSON) -> Any:
    return client.post(path, content=raw, headers=headers)


def fields_of(response: Any) -> list[str | None]:
    return [p["field"] for p in response.json()["detail"]]


# (path, raw body, the fields the 422 names)
DUPLICATES: list[tuple[str, bytes, list[str]]] = [
    ("/v1/transfers", b'{%s, "amount": "1", "amount": "2"}' % TRANSFER.encode(), ["amount"]),
    (
        "/v1/transfers",
        b'{%s, "amount": "1", "metadata": {"x": 1, "x": 1}}' % TRANSFER.encode(),
        ["metadata.x"],
    ),
    (
        "/v1/transfers",
        b'{%s, "amount": "1", "metadata": {"l": [0, {"k": 1, "k": 2, "j": 0, "j": 0}]}}'
        % TRANSFER.encode(),
        ["metadata.l.1.k", "metadata.l.1.j"],
    ),
    (
        "/v1/transfers/batch",
        b'{"transfers": [{%s, "amount": "1", "currency": "EUR"}]}' % TRANSFER.encode(),
        ["transfers.0.currency"],
    ),
    ("/v1/accounts", b'{"id": "a", "id": "b", "currency": "RUB"}', ["id"]),
    ("/transactions/", b'{%s, "amount": 1, "amount": 2}' % SEED.encode(), ["amount"]),
]


@pytest.mark.parametrize(("path", "raw", "fields"), DUPLICATES)
def test_duplicate_keys_are_refused_naming_the_key(
    client: TestClient,
    producer: FakeProducer,
    ledger: FakeLedger,
    path: str,
    raw: bytes,
    fields: list[str],
) -> None:
    """A key twice in any object of a body is a 422 naming its dotted path, whatever the
    two values are: never "the last one wins"; nothing is written."""
    response = post_raw(client, path, raw)
    assert response.status_code == 422, response.text
    assert fields_of(response) == fields
    assert (producer.records, ledger.creates) == ([], 0)


def test_keys_that_differ_only_in_case_are_distinct(
    client: TestClient, producer: FakeProducer
) -> None:
    """Positive control: "x" and "X" are two keys, so the body is accepted."""
    raw = b'{%s, "amount": "1", "metadata": {"x": 1, "X": 2}}' % TRANSFER.encode()
    assert post_raw(client, "/v1/transfers", raw).status_code == 202
    assert producer.transfers[0].metadata == {"x": 1, "X": 2}


def _transfer_with(field_json: bytes) -> bytes:
    return b'{%s, "amount": "1", %s}' % (TRANSFER.encode(), field_json)


# (path, raw body, the field the 422 names)
UNSAFE_STRINGS: list[tuple[str, bytes, str]] = [
    ("/v1/transfers", _transfer_with(b'"metadata": {"x": "a\\u0000b"}'), "metadata.x"),
    ("/v1/transfers", _transfer_with(b'"metadata": {"x": "\\ud800"}'), "metadata.x"),
    ("/v1/transfers", _transfer_with(b'"metadata": {"x": "\\udfff!"}'), "metadata.x"),
    ("/v1/transfers", _transfer_with(b'"metadata": {"x": "\xed\xa0\x80"}'), "metadata.x"),  # CESU
    (
        "/v1/transfers",
        _transfer_with(b'"metadata": {"x": ["ok", {"y": "\\u0000"}]}'),
        "metadata.x.1.y",
    ),
    ("/v1/transfers", _transfer_with(b'"metadata": {"k\\u0000": 1}'), "metadata.k\\u0000"),
    ("/v1/transfers", _transfer_with(b'"metadata": {"\\ud800": 1}'), "metadata.\\ud800"),
    ("/v1/transfers", b'{"debit_account_id": "al\\u0000ice"}', "debit_account_id"),
    ("/v1/transfers", b'"\\u0000"', "body"),
    (
        "/v1/transfers/batch",
        b'{"transfers": [{}, {"metadata": {"note": "\\u0000"}}]}',
        "transfers.1.metadata.note",
    ),
    ("/v1/accounts", b'{"id": "acc\\u0000", "currency": "RUB"}', "id"),
    ("/transactions/", b'{%s, "amount": "1\\u0000"}' % SEED.encode(), "amount"),
    # UTF-16 is ASCII with NUL bytes and "\u" split by one: the cheap guard still scans it.
    (
        "/v1/transfers",
        _transfer_with(b'"metadata": {"x": "\\u0000"}').decode().encode("utf-16-le"),
        "metadata.x",
    ),
]


@pytest.mark.parametrize(("path", "raw", "field"), UNSAFE_STRINGS)
def test_nul_and_lone_surrogates_are_refused_naming_the_path(
    client: TestClient,
    producer: FakeProducer,
    ledger: FakeLedger,
    path: str,
    raw: bytes,
    field: str,
) -> None:
    """NUL and lone surrogates, escaped or as raw (CESU) bytes, in any key or value at any
    depth are a 422 naming the path (PostgreSQL text refuses them: they were 500s); the
    reply itself is valid UTF-8 JSON, escaping them in field names."""
    response = post_raw(client, path, raw)
    assert response.status_code == 422, response.text
    assert field in fields_of(response)
    assert (producer.records, ledger.creates) == ([], 0)


def test_non_ascii_text_and_surrogate_pairs_stay_accepted(
    client: TestClient, producer: FakeProducer
) -> None:
    """Positive control: Cyrillic, an escaped surrogate pair (one emoji) and raw UTF-8 pass
    the scan that non-ASCII bodies get."""
    meta = '{"note": "Привет", "emoji": "\\ud83d\\ude00", "raw": "😀"}'
    raw = _transfer_with(f'"metadata": {meta}'.encode())
    response = post_raw(client, "/v1/transfers", raw)
    assert response.status_code == 202, response.text
    assert producer.transfers[0].metadata == {"note": "Привет", "emoji": "😀", "raw": "😀"}


@pytest.mark.parametrize(
    ("raw", "headers"),
    [
        (b'{"amount": "\xff"}', JSON),  # not UTF-8 at all
        (b'{"amount": "\xc3"}', JSON),  # truncated sequence
        (b'{"amount": "\xc0\xaf"}', JSON),  # overlong encoding of "/"
        (b"{junk", {"content-type": "text/plain"}),  # FastAPI would not parse it itself
        (b"{junk", {}),
        (b"[" * 100_000 + b"]" * 100_000, JSON),  # nested too deeply for any parser
        (b'{"a":' * 50_000 + b"1" + b"}" * 50_000, JSON),
    ],
)
def test_unreadable_bodies_are_422_naming_body(
    client: TestClient, producer: FakeProducer, raw: bytes, headers: dict[str, str]
) -> None:
    """Invalid UTF-8, invalid JSON under any content type and absurd nesting are a 422 on
    "body": never FastAPI's 400 "There was an error parsing the body", never a 500."""
    response = post_raw(client, "/v1/transfers", raw, headers)
    assert response.status_code == 422, response.text
    assert fields_of(response) == ["body"]
    assert producer.records == []


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b"{" + b",".join(b'"k%d": 1' % i for i in range(100_000)) + b"}", "body"),
        (
            _transfer_with(
                b'"metadata": {'
                + b",".join(b'"k%d": 1' % i for i in range(OBJECT_KEYS_MAX + 1))
                + b"}"
            ),
            "metadata",
        ),
    ],
)
def test_objects_with_too_many_keys_get_a_short_422(
    client: TestClient, raw: bytes, field: str
) -> None:
    """An object with more than OBJECT_KEYS_MAX keys is refused as it is parsed, naming the
    object: one problem, a reply of a few hundred bytes, not one problem per key."""
    response = post_raw(client, "/v1/transfers", raw)
    assert response.status_code == 422, response.text
    assert fields_of(response) == [field]
    assert len(response.content) < REPLY_BYTES_MAX


def test_an_object_of_exactly_the_maximum_keys_is_parsed() -> None:
    """Positive control for the key bound: OBJECT_KEYS_MAX keys are fine."""
    raw = b"{" + b",".join(b'"k%d": 1' % i for i in range(OBJECT_KEYS_MAX)) + b"}"
    assert len(loads_exact(raw)) == OBJECT_KEYS_MAX


@pytest.mark.parametrize(
    ("raw", "problems_found"),
    [
        (b"[" + b",".join([b'"\\u0000"'] * 5_000) + b"]", 5_000),  # found while parsing
        (b'{"metadata": {%s}}' % b",".join(b'"k%d": 1, "k%d": 2' % (i, i) for i in range(50)), 50),
        (b"{" + b",".join(b'"extra%d": 1' % i for i in range(500)) + b"}", 504),  # pydantic's
    ],
)
def test_a_422_lists_at_most_problems_max_then_counts_the_rest(
    client: TestClient, raw: bytes, problems_found: int
) -> None:
    """Each 422 lists PROBLEMS_MAX problems, then one (field null) with the number of the
    others: the reply stays a few KB whatever the body holds."""
    response = post_raw(client, "/v1/transfers", raw)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert len(detail) == PROBLEMS_MAX + 1
    assert detail[-1] == {
        "field": None,
        "message": f"{problems_found - PROBLEMS_MAX} more problems not shown",
    }
    assert len(response.content) < REPLY_BYTES_MAX


def test_a_short_list_of_problems_is_not_padded(client: TestClient) -> None:
    """Positive control: PROBLEMS_MAX problems or fewer are listed as they are."""
    raw = b"[" + b",".join([b'"\\u0000"'] * PROBLEMS_MAX) + b"]"
    detail = post_raw(client, "/v1/transfers", raw).json()["detail"]
    assert [p["field"] for p in detail] == [str(i) for i in range(PROBLEMS_MAX)]


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/accounts/a%00b", "id"),
        ("/v1/accounts/a%00b/entries", "id"),
        ("/v1/accounts/%ED%A0%80", "id"),
        ("/v1/accounts/@@world", "id"),
        ("/v1/accounts/" + "a" * 65, "id"),
        ("/v1/transfers/a%00b", "id"),
        ("/v1/accounts/alice/entries?cursor=a%00b", "cursor"),
        ("/v1/accounts/alice/entries?cursor=" + "A" * 65, "cursor"),
    ],
)
def test_path_and_query_parameters_refuse_nul(client: TestClient, path: str, field: str) -> None:
    """NUL (a 500 from PostgreSQL before) and characters no id can hold are a 422 naming the
    parameter, before anything is looked up."""
    response = client.get(path)
    assert response.status_code == 422, response.text
    assert fields_of(response) == [field]


def test_system_accounts_stay_readable(client: TestClient) -> None:
    """The path's id rule admits one leading "@", so @world:RUB is readable once it exists."""
    assert client.post("/v1/accounts", json={"id": "a1", "currency": "RUB"}).status_code == 201
    response = client.get("/v1/accounts/@world:RUB")
    assert response.status_code == 200, response.text
    assert response.json()["overdraft_limit"] is None
    assert client.get("/v1/accounts/%40world%3ARUB/entries").status_code == 200


def test_loads_exact_names_every_problem_in_document_order() -> None:
    """The parser's BodyError lists problems as they appear in the text, dotted paths."""
    with pytest.raises(BodyError) as caught:
        loads_exact(b'{"a": ["\\u0000", {"b": "\\ud800"}], "c": "\\u0000"}')
    assert caught.value.problems == [
        ("a.0", "contains NUL or a lone surrogate, which no stored text may hold"),
        ("a.1.b", "contains NUL or a lone surrogate, which no stored text may hold"),
        ("c", "contains NUL or a lone surrogate, which no stored text may hold"),
    ]
    assert caught.value.omitted == 0


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=6),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=10,
)
SPELLINGS = {
    "escaped": lambda text: text.encode("ascii"),
    "utf-8": lambda text: text.encode("utf-8", "surrogatepass"),
    "utf-16": lambda text: text.encode("utf-16-le", "surrogatepass"),
    "utf-32": lambda text: text.encode("utf-32-be", "surrogatepass"),
}


def _holds_unsafe(value: Any) -> bool:
    if isinstance(value, str):
        return any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, dict):
        return any(_holds_unsafe(k) or _holds_unsafe(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_unsafe(v) for v in value)
    return False


@settings(max_examples=400, deadline=None)
@given(value=JSON_VALUES, spelling=st.sampled_from(sorted(SPELLINGS)))
def test_the_cheap_guard_never_lets_nul_or_a_surrogate_through(value: Any, spelling: str) -> None:
    """However a body spells its strings (escapes, UTF-8 with CESU surrogates, UTF-16,
    UTF-32), loads_exact refuses it exactly when plain json.loads would yield a string with
    NUL or a lone surrogate, and otherwise yields the same value: skipping the walk for
    bodies that cannot hold one loses nothing."""
    text = json.dumps(value, ensure_ascii=spelling == "escaped")
    raw = SPELLINGS[spelling](text)
    plain = json.loads(raw)
    try:
        parsed = loads_exact(raw)
    except BodyError:
        assert _holds_unsafe(plain)
        return
    assert not _holds_unsafe(plain)
    assert parsed == plain


def test_loads_exact_walk_is_not_recursive() -> None:
    """A deep but parseable body with a NUL at the bottom is scanned without recursion and
    named by its full path (the scan's cost does not grow with depth per element)."""
    depth = 500
    raw = b'{"a":' * depth + b'"\\u0000"' + b"}" * depth
    with pytest.raises(BodyError) as caught:
        loads_exact(raw)
    assert caught.value.problems[0][0] == ".".join(["a"] * depth)
    assert json.loads(raw) is not None  # positive control: plain json parses it


def test_a_client_gone_mid_body_is_not_a_server_error() -> None:
    """A client that disconnects before its body arrived gets CLIENT_GONE_STATUS (logged as
    such, read by no one), not an unhandled exception and a 500."""
    app = create_app(fake_deps())
    sent: list[Message] = []
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/transfers",
        "raw_path": b"/v1/transfers",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "http_version": "1.1",
        "scheme": "http",
        "server": ("testserver", 80),
        "client": ("testclient", 1),
        "root_path": "",
    }

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == CLIENT_GONE_STATUS
