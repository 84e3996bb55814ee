"""Orion's metrics reach Prometheus from the live system, with the right types and labels.

Ray exports actor metrics with a `ray_` prefix through its metrics agent; Prometheus (started
by `orion infra up`) finds the agent through Ray's service-discovery file.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka import KafkaProducer

from orion.actors.labels import SETTLED_LABEL_SETS  # not .metrics: that imports Ray
from orion.config import Settings

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("audited")]
SCRAPE_WAIT_S = 90  # Ray exports every few seconds, Prometheus scrapes every 5 s

EXPECTED: dict[str, tuple[str, set[str]]] = {
    # metric (as scraped): (type, labels it must carry)
    "ray_orion_transfers_accepted_total": ("counter", set()),
    "ray_orion_api_accept_round_transfers": ("histogram", set()),
    "ray_orion_api_accept_round_seconds": ("histogram", set()),
    "ray_orion_transfers_settled_total": ("counter", {"status", "reason"}),
    "ray_orion_settle_latency_seconds": ("histogram", set()),
    "ray_orion_batch_apply_seconds": ("histogram", {"shard"}),
    "ray_orion_batch_size_transfers": ("histogram", {"shard"}),
    "ray_orion_pending_transfers": ("gauge", set()),
    "ray_orion_locks_held": ("gauge", set()),
    "ray_orion_holds_open": ("gauge", set()),
    "ray_orion_holds_overdue": ("gauge", set()),
    "ray_orion_inflight_batches": ("gauge", {"shard"}),
    "ray_orion_consumer_lag_records": ("gauge", {"partition"}),
    "ray_orion_transfers_polled_total": ("counter", set()),
    "ray_orion_dlq_records_total": ("counter", set()),
    "ray_orion_lock_conflicts_total": ("counter", set()),
    "ray_orion_batches_redispatched_total": ("counter", set()),
    "ray_orion_actor_restarts": ("gauge", {"actor"}),
    "ray_orion_partition_stuck": ("gauge", {"partition"}),
    "ray_orion_oldest_unsettled_seconds": ("gauge", set()),
    "ray_component_cpu_percentage": ("gauge", {"Component"}),
    "ray_component_rss_mb": ("gauge", {"Component"}),
}


def _prometheus(settings: Settings, path: str, **params: str) -> Any:
    url = f"http://{settings.host}:{settings.prometheus_port}{path}?"
    with urllib.request.urlopen(url + urllib.parse.urlencode(params), timeout=5) as resp:
        return json.load(resp)["data"]


def test_every_metric_is_exported_with_type_and_labels(
    api: httpx.Client, make_accounts: Callable[..., list[str]], settings: Settings
) -> None:
    """After real traffic (and one malformed record for the DLQ), each metric is in
    Prometheus with its type and labels."""
    a, b = make_accounts(2)
    for _ in range(20):
        body = {"debit_account_id": a, "credit_account_id": b, "amount": "0.01", "currency": "RUB"}
        assert api.post("/v1/transfers", json=body).status_code == 202
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    producer.send(settings.topic_transfers, key=b"metrics-test", value=uuid.uuid4().bytes).get(10)
    producer.close()

    missing = dict(EXPECTED)
    deadline = time.monotonic() + SCRAPE_WAIT_S
    while missing and time.monotonic() < deadline:
        for name in list(missing):
            kind, labels = missing[name]
            sample = f"{name}_count" if kind == "histogram" else name
            # an instant query: the series is live now, not just somewhere in the history
            rows = _prometheus(settings, "/api/v1/query", query=sample)["result"]
            series = [row["metric"] for row in rows]
            family = name.removesuffix("_total")  # metadata names a counter's family
            meta = _prometheus(settings, "/api/v1/metadata", metric=family) if series else {}
            if family in meta:  # metadata can trail a brand-new series by a scrape
                del missing[name]
                assert meta[family][0]["type"] == kind, name
                assert labels <= set(series[0]), (name, sorted(series[0]))
        time.sleep(2)
    assert not missing, f"never scraped: {sorted(missing)}"


def test_every_counter_label_set_starts_at_zero(system: str, settings: Settings) -> None:
    """Every status/reason pair of the settled counter is a series from the shards' start,
    including reasons no test ever produces, so a quiet system reads 0, not "no data"."""
    wanted = {(tags["status"], tags["reason"]) for tags in SETTLED_LABEL_SETS}
    seen: set[tuple[str, str]] = set()
    deadline = time.monotonic() + SCRAPE_WAIT_S
    while wanted - seen and time.monotonic() < deadline:
        rows = _prometheus(settings, "/api/v1/query", query="ray_orion_transfers_settled_total")
        seen = {(r["metric"]["status"], r["metric"]["reason"]) for r in rows["result"]}
        time.sleep(2)
    assert wanted <= seen, f"missing label sets: {sorted(wanted - seen)}"


def _panel_queries() -> list[tuple[str, str]]:
    root = Path(__file__).resolve().parents[2] / "dashboards"
    queries = []
    for path in sorted(root.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            queries += [(f"{path.name}: {panel['title']}", t["expr"]) for t in panel["targets"]]
    return queries


def test_every_dashboard_panel_query_returns_data(settings: Settings) -> None:
    """Each panel of every Orion dashboard parses in Prometheus and returns data from the
    live system (runs after the test above put traffic through it).

    A series an actor exports can be briefly absent: the fault tests restart the orchestrator
    just before, and its gauges reach Prometheus one export plus one scrape after it is back.
    So each query gets the scrape wait to return data; a query that never does fails."""
    queries = _panel_queries()
    assert queries
    empty = dict(queries)
    deadline = time.monotonic() + SCRAPE_WAIT_S
    while empty and time.monotonic() < deadline:
        for title, expr in list(empty.items()):
            if _prometheus(settings, "/api/v1/query", query=expr)["result"]:
                del empty[title]
        time.sleep(2)
    assert not empty, f"no data for: {empty}"
