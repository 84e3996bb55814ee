"""Builds the HTTP API's real dependencies from the settings, and closes them again.

`open_api_deps(settings)` is the one place the API's Kafka, Redis and PostgreSQL clients and
its outcome-feed thread are created: called from the app's lifespan (so under Ray Serve they
are built inside the replica, never at import time). None of Kafka, Redis or PostgreSQL has
to answer at start: each client connects (again) on its own once its service answers, and
/readyz says which one is missing meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from orion.adapters.api_kafka import KafkaTransferProducer, OutcomeFeed
from orion.adapters.api_postgres import PostgresLedger
from orion.adapters.api_redis import RedisIdempotencyStore
from orion.config import Settings
from orion.serve.outcomes import OutcomeWaiters
from orion.serve.ports import ApiDeps, ApiOptions


@asynccontextmanager
async def open_api_deps(settings: Settings) -> AsyncIterator[ApiDeps]:
    async with AsyncExitStack() as stack:
        producer = await asyncio.to_thread(
            KafkaTransferProducer,
            settings.kafka_bootstrap,
            settings.topic_transfers,
            settings.topic_health,
        )
        stack.push_async_callback(asyncio.to_thread, producer.close)

        store = RedisIdempotencyStore(settings.redis_url)
        stack.push_async_callback(store.aclose)

        ledger = PostgresLedger(settings.postgres_dsn)
        await ledger.open()
        stack.push_async_callback(ledger.aclose)

        waiters = OutcomeWaiters()
        feed = OutcomeFeed(settings.kafka_bootstrap, settings.topic_results, waiters)
        feed.start()
        stack.push_async_callback(asyncio.to_thread, feed.stop)

        yield ApiDeps(
            producer=producer,
            idempotency=store,
            ledger=ledger,
            outcomes=waiters,
            options=ApiOptions.from_settings(settings),
        )
