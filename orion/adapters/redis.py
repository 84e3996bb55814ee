"""Redis adapter: the only module that imports redis-py."""

from __future__ import annotations

import redis

SOCKET_TIMEOUT_S = 2.0  # local Redis answers in microseconds; longer means it is not up


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=SOCKET_TIMEOUT_S)


def ping(url: str) -> bool:
    with client(url) as conn:
        return bool(conn.ping())


def cap_memory(url: str, max_bytes: int, policy: str) -> None:
    """Set the running server's memory cap and eviction policy (0 bytes: no cap)."""
    with client(url) as conn:
        conn.config_set("maxmemory", str(max_bytes))
        conn.config_set("maxmemory-policy", policy)


def server_version(url: str) -> str:
    with client(url) as conn:
        info = conn.info("server")
    return str(info.get("redis_version", "?"))
