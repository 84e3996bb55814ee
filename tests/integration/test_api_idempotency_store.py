"""The Redis idempotency store's atomic operations, against the real Redis."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aredis

from orion.adapters.api_redis import RedisIdempotencyStore
from orion.config import Settings

pytestmark = pytest.mark.integration
TTL_MS = 60_000


def test_claim_is_exclusive_and_returns_the_holder(settings: Settings) -> None:
    """Of two claims of one id in one pipelined call, the first wins and the second learns
    the winner's value; a fresh id in the same call is won."""

    async def run() -> list[str | None]:
        store = RedisIdempotencyStore(settings.redis_url)
        try:
            taken, fresh = str(uuid.uuid4()), str(uuid.uuid4())
            return await store.claim(
                [(taken, "h1:pending"), (taken, "h2:pending"), (fresh, "h3:pending")], TTL_MS
            )
        finally:
            await store.aclose()

    assert asyncio.run(run()) == [None, "h1:pending", None]


def test_promote_and_release_only_touch_the_owned_value(settings: Settings) -> None:
    """Compare-and-set and compare-and-delete change the key only if it still holds the
    expected value, so a request never overwrites or frees someone else's claim."""

    async def run() -> list[str | None]:
        store = RedisIdempotencyStore(settings.redis_url)
        key = str(uuid.uuid4())
        seen: list[str | None] = []
        try:
            await store.claim([(key, "mine:pending")], TTL_MS)
            await store.promote([(key, "theirs:pending", "theirs:accepted")], TTL_MS)
            seen.append(await store.get(key))
            await store.release([(key, "theirs:pending")])
            seen.append(await store.get(key))
            await store.promote([(key, "mine:pending", "mine:accepted:1:{}")], TTL_MS)
            seen.append(await store.get(key))
            await store.release([(key, "mine:accepted:1:{}")])
            seen.append(await store.get(key))
        finally:
            await store.aclose()
        return seen

    assert asyncio.run(run()) == ["mine:pending", "mine:pending", "mine:accepted:1:{}", None]


def test_a_script_redis_does_not_know_is_loaded_and_run(settings: Settings) -> None:
    """After Redis forgets its scripts (a restart, or SCRIPT FLUSH), the store's next call
    loads the script and runs it. Every Orion client reloads on NOSCRIPT, so flushing the
    shared Redis is harmless to whatever else is running."""

    async def run() -> str | None:
        store = RedisIdempotencyStore(settings.redis_url)
        admin = aredis.Redis.from_url(settings.redis_url, decode_responses=True)
        key = str(uuid.uuid4())
        try:
            await store.claim([(str(uuid.uuid4()), "warm:pending:x")], TTL_MS)  # script known
            await admin.script_flush()
            assert await store.claim([(key, "loaded")], TTL_MS) == [None]
            return await store.get(key)
        finally:
            await store.aclose()
            await admin.aclose()

    assert asyncio.run(run()) == "loaded"


def test_a_connection_the_server_closed_is_replaced_without_an_error(settings: Settings) -> None:
    """Redis drops the store's pooled connections (as on a restart): the next calls run on
    fresh ones instead of failing, and a repeated claim still reports the holder."""
    name = f"orion-test-{uuid.uuid4().hex[:8]}"

    async def run() -> tuple[int, list[str | None]]:
        store = RedisIdempotencyStore(settings.redis_url, client_name=name)
        admin = aredis.Redis.from_url(settings.redis_url, decode_responses=True)
        try:
            taken = str(uuid.uuid4())
            await store.claim([(taken, "h1:pending:a")], TTL_MS)
            mine = [c for c in await admin.client_list() if c["name"] == name]
            for client in mine:
                await admin.client_kill_filter(_id=client["id"])
            return len(mine), await store.claim(
                [(taken, "h2:pending:b"), (str(uuid.uuid4()), "h3:pending:c")], TTL_MS
            )
        finally:
            await store.aclose()
            await admin.aclose()

    killed, held = asyncio.run(run())
    assert killed >= 1
    assert held == ["h1:pending:a", None]
