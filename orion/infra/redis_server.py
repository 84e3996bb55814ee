"""Redis from the Debian package, bound to loopback, data under the state dir.

Redis holds only lock leases (PostgreSQL is the source of truth), but it still snapshots on
shutdown so a restart looks like a restart, not a wipe.
"""

from __future__ import annotations

from orion.adapters import redis as redis_adapter
from orion.infra.service import Missing, Service, need_binary


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
            "--save", "60 1000", "--appendonly", "no", "--logfile", "",
        ]  # fmt: skip

    def ready(self) -> bool:
        return redis_adapter.ping(self.settings.redis_url)

    def version(self) -> str:
        return redis_adapter.server_version(self.settings.redis_url)
