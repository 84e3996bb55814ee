"""Which shard owns an account's debits.

Responsibilities: map an account id to one of `shard_count` shards.

Guarantees: the mapping depends only on the id's UTF-8 bytes and `shard_count`; it is the
same in every process, on every machine and on every Python version, because it uses BLAKE2b
(never the salted built-in `hash()`). A unit test pins known values so it cannot drift.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

SHARD_HASH_BYTES = 8  # 64 bits: modulo bias is ~1e-17 for any realistic shard count
ROUTE_CACHE_ENTRIES_MAX = 1 << 18  # ~262k hot accounts, ~40 MB at most; planning is hot


@lru_cache(maxsize=ROUTE_CACHE_ENTRIES_MAX)
def shard_for(account_id: str, shard_count: int) -> int:
    """The shard, in 0..shard_count-1, that transfers debiting `account_id` go to."""
    if shard_count < 1:
        raise ValueError(f"shard_count must be at least 1, got {shard_count}")
    digest = hashlib.blake2b(account_id.encode(), digest_size=SHARD_HASH_BYTES).digest()
    return int.from_bytes(digest, "big") % shard_count
