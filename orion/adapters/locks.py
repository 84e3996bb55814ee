"""Account locks in Redis: a lease per account, owned by one orchestrator incarnation.

Every operation on a whole round is ONE Lua call (atomic on the server): acquire is
all-or-nothing and returns the accounts held by another owner; renew and release touch only
keys whose value is still our owner token, so an expired-then-retaken lease is never
extended or deleted by its old owner. Correctness never depends on these locks (PostgreSQL
row locks and the claim step do); they keep concurrent batches disjoint so shards never wait.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

import redis
from redis.exceptions import RedisError

from orion.adapters.redis import LEAN_PACKER
from orion.orchestration.ports import LocksUnavailableError

T = TypeVar("T")
SOCKET_TIMEOUT_S = 5.0  # a healthy local Redis answers in microseconds

KEY_PREFIX = "orion:lock:"

# Take each free key with one SET NX (the common case: one command per account, not a GET
# and a SET); re-lease our own; if any key is another owner's, give back what this call took,
# so a refused round leaves every key as it found it (ours stay ours).
ACQUIRE = """
local held, taken = {}, {}
for i, key in ipairs(KEYS) do
  if redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2]) then
    taken[#taken + 1] = key
  elseif redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
  else
    held[#held + 1] = i
  end
end
if #held > 0 then
  for _, key in ipairs(taken) do redis.call('DEL', key) end
end
return held
"""

RENEW = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('PEXPIRE', key, ARGV[2]); n = n + 1 end
end
return n
"""
RELEASE = """
local n = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key); n = n + 1 end
end
return n
"""


class RedisAccountLocks:
    """Leases on account ids for one owner token."""

    def __init__(self, url: str, owner: str, lease_ms: int) -> None:
        self._client = redis.Redis.from_url(
            url,
            socket_timeout=SOCKET_TIMEOUT_S,
            socket_connect_timeout=SOCKET_TIMEOUT_S,
            command_packer=LEAN_PACKER,  # a round's call carries every account's key
        )
        self._owner = owner
        self._lease_ms = lease_ms
        self._acquire = self._client.register_script(ACQUIRE)
        self._renew = self._client.register_script(RENEW)
        self._release = self._client.register_script(RELEASE)

    def acquire(self, accounts: Iterable[str]) -> set[str]:
        """Lease every account, or none; returns the accounts another owner holds."""
        ids = list(accounts)
        if not ids:
            return set()
        keys = [KEY_PREFIX + a for a in ids]
        held = _call(lambda: self._acquire(keys=keys, args=[self._owner, self._lease_ms]))
        return {ids[int(i) - 1] for i in held}

    def renew(self, accounts: Iterable[str]) -> int:
        keys = [KEY_PREFIX + a for a in accounts]
        if not keys:
            return 0
        return int(_call(lambda: self._renew(keys=keys, args=[self._owner, self._lease_ms])))

    def release(self, accounts: Iterable[str]) -> int:
        keys = [KEY_PREFIX + a for a in accounts]
        return int(_call(lambda: self._release(keys=keys, args=[self._owner]))) if keys else 0

    def close(self) -> None:
        self._client.close()


def _call(command: Callable[[], T]) -> T:
    try:
        return command()
    except RedisError as err:
        raise LocksUnavailableError(f"redis: {err}") from err
