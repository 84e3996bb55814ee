"""Redis adapter: plain clients for the stack's checks, and the lean command packer the lock
and idempotency clients use."""

from __future__ import annotations

from typing import Any

import hiredis
import redis
import redis.asyncio.connection as aconnection
from redis.exceptions import DataError

SOCKET_TIMEOUT_S = 2.0  # local Redis answers in microseconds; longer means it is not up


class LeanPacker:
    """Packs a command with hiredis alone. redis-py's own hiredis packer first runs every
    argument through its Python encoder, one call per argument; hiredis already packs str
    (as UTF-8), bytes, int and float, so for the lock and idempotency scripts, which carry
    two arguments per account or transfer (1,000-1,500 per batch call), that loop was most of
    the packing cost. Anything hiredis refuses is a DataError, as redis-py raises."""

    def pack(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):  # "SCRIPT LOAD" is two words on the wire
            args = (*args[0].encode().split(), *args[1:])
        try:
            return [hiredis.pack_command(args)]
        except TypeError as err:
            raise DataError(f"cannot send {err}") from err


LEAN_PACKER = LeanPacker()  # stateless: one for every connection


class LeanAsyncConnection(aconnection.Connection):
    """redis-py's asyncio connection with the lean packer (the sync client takes the packer
    as its `command_packer` argument; the asyncio one has no such argument)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        return LEAN_PACKER.pack(*args)


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
