"""The lean packer puts on the wire exactly what redis-py's own packer does, and refuses what
it refuses."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.connection import Connection
from redis.exceptions import DataError

from orion.adapters.redis import LEAN_PACKER, LeanAsyncConnection

ARG = st.one_of(st.text(), st.binary(), st.integers(-(2**63), 2**63 - 1))


def _redis_py(*args: object) -> bytes:
    return b"".join(Connection().pack_command(*args))


@given(st.lists(ARG, max_size=40))
def test_packs_what_redis_py_packs(args: list[object]) -> None:
    command = ("EVALSHA", "0" * 40, len(args), *args)
    assert b"".join(LEAN_PACKER.pack(*command)) == _redis_py(*command)


def test_splits_a_multi_word_command_name() -> None:
    assert LEAN_PACKER.pack("SCRIPT LOAD", "return 1") == [_redis_py("SCRIPT LOAD", "return 1")]


@pytest.mark.parametrize("bad", [None, True, object()])
def test_refuses_what_redis_py_refuses(bad: object) -> None:
    with pytest.raises(DataError):
        _redis_py("SET", "k", bad)
    with pytest.raises(DataError):
        LEAN_PACKER.pack("SET", "k", bad)


def test_the_asyncio_connection_packs_with_it() -> None:
    assert LeanAsyncConnection().pack_command("GET", "k") == LEAN_PACKER.pack("GET", "k")
