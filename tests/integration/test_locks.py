"""Account leases in the real Redis: one Lua call per round, owner-checked everywhere."""

from __future__ import annotations

import time

import pytest

from orion.adapters.locks import RedisAccountLocks
from orion.config import Settings

pytestmark = pytest.mark.integration


def test_acquire_is_all_or_nothing_and_names_the_held_accounts(
    settings: Settings, unique: str
) -> None:
    """A round overlapping another owner's lease gets nothing and learns which account."""
    mine = RedisAccountLocks(settings.redis_url, f"a-{unique}", lease_ms=5_000)
    theirs = RedisAccountLocks(settings.redis_url, f"b-{unique}", lease_ms=5_000)
    x, y, z = (f"{n}-{unique}" for n in "xyz")
    assert mine.acquire([x, y]) == set()
    assert mine.acquire([y, x]) == set(), "our own leases are ours to take again"
    assert theirs.acquire([z, y]) == {y}
    assert mine.acquire([z]) == set(), "the refused call gave back z, which it took first"
    assert theirs.acquire([x, z]) == {x, z}
    assert mine.release([x, y, z]) == 3


def test_release_and_renew_only_touch_own_leases(settings: Settings, unique: str) -> None:
    """An old owner can neither extend nor delete a lease that expired and was retaken."""
    old = RedisAccountLocks(settings.redis_url, f"old-{unique}", lease_ms=200)
    new = RedisAccountLocks(settings.redis_url, f"new-{unique}", lease_ms=5_000)
    account = f"acct-{unique}"
    assert old.acquire([account]) == set()
    time.sleep(0.3)
    assert new.acquire([account]) == set()
    assert old.renew([account]) == 0
    assert old.release([account]) == 0
    assert old.acquire([account]) == {account}
    assert new.renew([account]) == 1
    assert new.release([account]) == 1
