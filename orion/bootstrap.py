"""Wiring of the HTTP API: its real dependencies, built from the settings, and the app.

Wiring lives outside the layers it wires: `orion.serve` never imports an adapter; this module
(Ray-free, so tests and tools can use it) and the Serve deployment do.

`open_api_deps(settings)` is the one place the API's Kafka, Redis and PostgreSQL clients, its
outcome-feed thread and its settlement monitor are created: called from the app's lifespan
(so under Ray Serve they are built inside the replica, never at import time). None of Kafka,
Redis or PostgreSQL has to answer at start: each client connects (again) on its own once its
service answers, and /readyz says which one is missing meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from orion.adapters.api_kafka import KafkaTransferProducer, OutcomeFeed
from orion.adapters.api_postgres import PostgresLedger
from orion.adapters.api_progress import SettlementMonitor
from orion.adapters.api_redis import RedisIdempotencyStore
from orion.config import Settings, get_settings
from orion.messages import ORCHESTRATOR_GROUP
from orion.serve import observers
from orion.serve.app import create_app
from orion.serve.outcomes import OutcomeWaiters
from orion.serve.ports import ApiDeps, ApiOptions


def api_app() -> FastAPI:
    """The API as deployed: its lifespan opens the real dependencies from the settings."""
    return create_app(open_deps=lambda: open_api_deps(get_settings()))


@asynccontextmanager
async def open_api_deps(settings: Settings) -> AsyncIterator[ApiDeps]:
    async with AsyncExitStack() as stack:
        producer = await asyncio.to_thread(
            KafkaTransferProducer,
            settings.kafka_bootstrap,
            settings.topic_transfers,
            settings.topic_health,
            settings.ingest_records == "packed",
        )
        stack.push_async_callback(asyncio.to_thread, producer.close)

        store = RedisIdempotencyStore(settings.redis_url)
        stack.push_async_callback(store.aclose)

        ledger = PostgresLedger(settings.postgres_dsn)
        await ledger.open()
        stack.push_async_callback(ledger.aclose)

        waiters = OutcomeWaiters(on_demand=True)  # the feed below reads while someone waits
        feed = OutcomeFeed(settings.kafka_bootstrap, settings.topic_results, waiters)
        feed.start()
        stack.push_async_callback(asyncio.to_thread, feed.stop)

        monitor = SettlementMonitor(
            settings.kafka_bootstrap,
            settings.topic_transfers,
            ORCHESTRATOR_GROUP,
            settings.stuck_after_s,
        )
        monitor.observe(observers.settlement)
        monitor.start()
        stack.push_async_callback(asyncio.to_thread, monitor.stop)

        yield ApiDeps(
            producer=producer,
            idempotency=store,
            ledger=ledger,
            outcomes=waiters,
            options=ApiOptions.from_settings(settings),
            progress=monitor,
        )
