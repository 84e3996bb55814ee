"""The API's idempotency store on Redis (redis-py's asyncio client); imports redis for the API.

Guarantees: a batch of claims, promotions or releases is ONE Lua script call carrying every
key (atomic, one round trip, one reply to parse; a micro-batch of 500 requests costs the
API one command, not 500). A claim is `SET key value NX GET PX ttl` (Redis >= 7.0), so
winning and learning the current holder are one atomic step per key. Promote and release
are compare-and-set / compare-and-delete, so a request only ever changes the key it still
owns. Scripts are redis-py registered scripts (EVALSHA, loaded on the first NOSCRIPT).

A command that fails on a dropped connection (Redis restarted, or closed an idle client) is
sent once more on a fresh one. That is safe for every call here: a repeated claim finds the
request's own pending value (the caller counts that as won), promote and release are
compare-and-set, get and ping read. Errors left after that become DependencyUnavailableError.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from orion.adapters.redis import LeanAsyncConnection
from orion.serve.idempotency import redis_key
from orion.serve.ports import DependencyUnavailableError

SOCKET_TIMEOUT_S = 2.0  # local Redis answers in microseconds; longer means it is down
POOL_CONNECTIONS_MAX = 64  # concurrent requests beyond this wait for a connection
CLIENT_NAME = "orion-api"  # what `CLIENT LIST` shows for these connections
RETRIES_ON_CONNECTION_ERROR = 1  # one fresh connection; a second failure means Redis is down

# KEYS: the ids' keys; ARGV[1]: ttl (ms), then one value per key. Per key: nil if this call
# set it (won), else the value that already held it.
_CLAIM = """
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('SET', key, ARGV[i + 1], 'NX', 'GET', 'PX', ARGV[1])
end
return out
"""
# ARGV[1]: ttl (ms), then (expected, new) per key.
_PROMOTE = """
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[2 * i] then
    redis.call('SET', key, ARGV[2 * i + 1], 'PX', ARGV[1])
  end
end
return 0
"""
# ARGV: the expected value per key.
_RELEASE = """
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[i] then
    redis.call('DEL', key)
  end
end
return 0
"""


class RedisIdempotencyStore:
    def __init__(self, url: str, client_name: str = CLIENT_NAME) -> None:
        pool = aredis.BlockingConnectionPool.from_url(
            url,
            connection_class=LeanAsyncConnection,  # a batch's call carries 500+ keys
            max_connections=POOL_CONNECTIONS_MAX,
            timeout=SOCKET_TIMEOUT_S,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            retry=Retry(NoBackoff(), RETRIES_ON_CONNECTION_ERROR),
            client_name=client_name,
            decode_responses=True,
        )
        self._redis = aredis.Redis(connection_pool=pool)
        self._claim = self._redis.register_script(_CLAIM)
        self._promote = self._redis.register_script(_PROMOTE)
        self._release = self._redis.register_script(_RELEASE)

    async def claim(self, claims: Sequence[tuple[str, str]], ttl_ms: int) -> list[str | None]:
        if not claims:
            return []
        keys = [redis_key(transfer_id) for transfer_id, _ in claims]
        held = await self._call(self._claim(keys, [ttl_ms, *(value for _, value in claims)]))
        return [None if v is None else str(v) for v in held]

    async def get(self, transfer_id: str) -> str | None:
        value = await self._call(self._redis.get(redis_key(transfer_id)))
        return None if value is None else str(value)

    async def promote(self, items: Sequence[tuple[str, str, str]], ttl_ms: int) -> None:
        if items:
            args: list[Any] = [ttl_ms]
            for _, expected, new in items:
                args += (expected, new)
            await self._call(self._promote([redis_key(i) for i, _, _ in items], args))

    async def release(self, items: Sequence[tuple[str, str]]) -> None:
        if items:
            keys = [redis_key(i) for i, _ in items]
            await self._call(self._release(keys, [expected for _, expected in items]))

    async def ping(self) -> None:
        await self._call(self._redis.ping())

    async def aclose(self) -> None:
        await self._redis.aclose()

    @staticmethod
    async def _call(command: Awaitable[Any]) -> Any:
        try:
            return await command
        except RedisError as err:
            raise DependencyUnavailableError("redis", str(err)) from err
