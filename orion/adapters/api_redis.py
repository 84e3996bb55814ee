"""The API's idempotency store on Redis (redis-py's asyncio client); imports redis for the API.

Guarantees: a batch of claims, promotions or releases is one round trip (pipelined). A claim is
`SET key value NX GET PX ttl` (Redis >= 7.0), so winning and learning the current holder are
one atomic command. Promote and release are Lua compare-and-set / compare-and-delete (by
EVALSHA, loaded on first NOSCRIPT), so a request only ever changes the key it still owns.
Redis errors become DependencyUnavailableError.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aredis
from redis.exceptions import NoScriptError, RedisError

from orion.serve.idempotency import redis_key
from orion.serve.ports import DependencyUnavailableError

SOCKET_TIMEOUT_S = 2.0  # local Redis answers in microseconds; longer means it is down
POOL_CONNECTIONS_MAX = 64  # concurrent requests beyond this wait for a connection

_PROMOTE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end
return false
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisIdempotencyStore:
    def __init__(self, url: str) -> None:
        pool = aredis.BlockingConnectionPool.from_url(
            url,
            max_connections=POOL_CONNECTIONS_MAX,
            timeout=SOCKET_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            decode_responses=True,
        )
        self._redis = aredis.Redis(connection_pool=pool)

    async def claim(self, claims: Sequence[tuple[str, str]], ttl_ms: int) -> list[str | None]:
        def queue(target: Any) -> list[Any]:
            return [
                target.set(redis_key(transfer_id), value, nx=True, get=True, px=ttl_ms)
                for transfer_id, value in claims
            ]

        return [None if v is None else str(v) for v in await self._many(queue, len(claims))]

    async def get(self, transfer_id: str) -> str | None:
        [value] = await self._many(lambda target: [target.get(redis_key(transfer_id))], 1)
        return None if value is None else str(value)

    async def promote(self, items: Sequence[tuple[str, str, str]], ttl_ms: int) -> None:
        rows = [[redis_key(i), expected, new, ttl_ms] for i, expected, new in items]
        await self._eval(_PROMOTE, rows)

    async def release(self, items: Sequence[tuple[str, str]]) -> None:
        await self._eval(_RELEASE, [[redis_key(i), expected] for i, expected in items])

    async def ping(self) -> None:
        await self._many(lambda target: [target.ping()], 1)

    async def aclose(self) -> None:
        await self._redis.aclose()

    async def _eval(self, script: str, rows: list[list[Any]]) -> None:
        """EVALSHA each row (key first), loading the script once if Redis lacks it."""
        sha = hashlib.sha1(script.encode()).hexdigest()  # how Redis names a script
        for attempt in range(2):
            try:
                await self._many(lambda t: [t.evalsha(sha, 1, *row) for row in rows], len(rows))
                return
            except NoScriptError:
                if attempt:
                    raise DependencyUnavailableError("redis", "script vanished twice") from None
                await self._many(lambda target: [target.script_load(script)], 1)

    async def _many(self, queue: Callable[[Any], list[Any]], count: int) -> list[Any]:
        """Run the queued commands: directly when one, else pipelined in one round trip."""
        if count == 0:
            return []
        try:
            if count == 1:
                return [await queue(self._redis)[0]]
            async with self._redis.pipeline(transaction=False) as pipe:
                queue(pipe)
                return list(await pipe.execute())
        except NoScriptError:
            raise
        except RedisError as err:
            raise DependencyUnavailableError("redis", str(err)) from err
