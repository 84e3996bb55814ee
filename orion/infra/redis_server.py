"""Redis from the Debian package, bound to loopback, data under the state dir.

Redis holds lock leases and the API's idempotency keys (PostgreSQL is the source of truth),
but it still snapshots on shutdown so a restart looks like a restart, not a wipe, and at most
hourly while it runs (SNAPSHOT_SAVE_POINT).

Its memory is capped (`ORION_REDIS_MAXMEMORY_MB`, applied at every `orion infra up`, also to a
running server). Every key Orion writes has a TTL, and past the cap Redis evicts the least
recently used of them (`volatile-lru`): old idempotency keys, never a lease being renewed
every few seconds. An evicted idempotency key only shortens the window in which the API
answers a repeated id from Redis; PostgreSQL still applies every id once.
"""

from __future__ import annotations

from orion.adapters import redis as redis_adapter
from orion.infra.service import Missing, Service, need_binary

EVICTION_POLICY = "volatile-lru"  # only keys with a TTL, least recently used first
# Redis's `save` rule: snapshot when this many seconds have passed with at least this many
# changes (a save point also makes a SIGTERM snapshot first). Every snapshot forks and writes
# the whole dataset, and the idempotency window keeps one key per accepted transfer for 24 h:
# with "60 1000" a busy server wrote it every minute, 4 s of a core for 2.25M keys (207 MB)
# here, and longer than the minute itself as the window fills toward the memory cap. A crash
# loses the keys since the last snapshot, which costs nothing in money: PostgreSQL applies an
# id once, and a reused id with another body goes to the DLQ (`duplicate_id`) instead of a 409.
SNAPSHOT_SAVE_POINT = "3600 1"


class RedisServer(Service):
    name = "redis"

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.redis_port}"

    def prerequisites(self) -> list[Missing]:
        return need_binary("redis-server", "redis-server")

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> list[str]:
        return [
            "redis-server", "--bind", self.settings.host, "--port", str(self.settings.redis_port),
            "--dir", str(self.dir), "--daemonize", "no", "--protected-mode", "yes",
            "--save", SNAPSHOT_SAVE_POINT, "--appendonly", "no", "--logfile", "",
            *(["--requirepass", self.settings.redis_password]
              if self.settings.redis_password else []),
        ]  # fmt: skip

    def ready(self) -> bool:
        return redis_adapter.ping(self.settings.redis_url)

    def after_ready(self) -> list[str]:
        max_bytes = self.settings.redis_maxmemory_mb * 2**20
        redis_adapter.cap_memory(self.settings.redis_url, max_bytes, EVICTION_POLICY)
        return []

    def version(self) -> str:
        return redis_adapter.server_version(self.settings.redis_url)
