"""From `orion bench` options to a checked plan: each scenario's defaults, and bounds (pure).

| scenario   | endpoint                 | pairing | clients | accounts | count              |
|------------|--------------------------|---------|---------|----------|--------------------|
| seed       | POST /transactions/      | mirror  | 200     | 10,000   | 100k (--full: 1M)  |
| contention | POST /v1/transfers       | random  | 200     | 1,000    | 100k (--full: 1M)  |
| batch      | POST /v1/transfers/batch | mirror  | 4       | 10,000   | 100k (--full: 1M)  |
| latency    | POST /v1/transfers       | random  | 200 (*) | 10,000   | rate x duration    |
| generator  | a trivial echo server    | mirror  | 200     | -        | 100k               |

(*) open loop: the connection pool; arrivals do not wait for it (see schedule.py).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from load.shapes import (
    SEED_FIRST_ACCOUNT,
    Endpoint,
    LoadShape,
    Pairing,
    Scenario,
    new_id_prefix,
)
from orion.lab.layout import PREFIX_LEN, SUBNET_PREFIX

COUNT_DEFAULT = 100_000
COUNT_FULL = 1_000_000  # the original system's full test
COUNT_MAX = 2_000_000  # a run's transfers; also what one seed transaction handles
CLIENTS_MAX = 5_000  # connections from one machine's loopback; more is a typo
WORKERS_MAX = 16
BATCH_SIZE_DEFAULT = 500
BATCH_SIZE_MAX = 1_000  # the API's own limit per request
RATE_DEFAULT_PER_S = 1_000.0
DURATION_DEFAULT_S = 30.0
OPEN_LOOP_GRACE_S = 5.0  # an open-loop worker may fall this far behind before it stops
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
LAB_NETWORK = ipaddress.ip_network(f"{SUBNET_PREFIX}.0/{PREFIX_LEN}")
HTTP_CLIENTS = ("wire", "aiohttp")  # load/wire.py (cheapest CPU per request), or aiohttp


class PlanError(ValueError):
    """An option is out of range; the message names it."""


@dataclass(frozen=True, slots=True)
class Defaults:
    endpoint: Endpoint
    pairing: Pairing
    clients: int
    accounts: int


DEFAULTS = {
    Scenario.SEED: Defaults(Endpoint.SEED, Pairing.MIRROR, 200, 10_000),
    Scenario.CONTENTION: Defaults(Endpoint.TRANSFER, Pairing.RANDOM, 200, 1_000),
    Scenario.BATCH: Defaults(Endpoint.BATCH, Pairing.MIRROR, 4, 10_000),
    Scenario.LATENCY: Defaults(Endpoint.TRANSFER, Pairing.RANDOM, 200, 10_000),
    Scenario.GENERATOR: Defaults(Endpoint.SEED, Pairing.MIRROR, 200, 10_000),
}


@dataclass(frozen=True, slots=True)
class BenchOptions:
    """What the user asked for; None means the scenario's default."""

    scenario: Scenario
    count: int | None = None
    full: bool = False
    clients: int | None = None
    accounts: int | None = None
    batch_size: int = BATCH_SIZE_DEFAULT
    rate_per_s: float = RATE_DEFAULT_PER_S
    duration_s: float = DURATION_DEFAULT_S
    workers: int = 2
    http_client: str = "wire"
    baselines: bool = False
    baseline_s: float = 15.0  # the bare HTTP server's run is cut after this
    drain_timeout_s: float = 600.0
    drain_idle_s: float = 60.0
    time_limit_s: float = 1_800.0  # no request starts later than this
    request_timeout_s: float = 30.0
    audit: bool = True
    base_url: str | None = None
    out_root: Path | None = None
    warmup: int = 0  # transfers of the same scenario run first, not measured


@dataclass(frozen=True, slots=True)
class Plan:
    options: BenchOptions
    shape: LoadShape
    clients: int
    base_url: str
    open_loop: bool

    def describe(self) -> dict[str, Any]:
        o, s = self.options, self.shape
        return {
            "endpoint": s.endpoint.value,
            "transfers": s.count,
            "requests": s.requests,
            "per_request": s.per_request,
            "clients": self.clients,
            "workers": o.workers,
            "http_client": o.http_client,
            "accounts": s.accounts,
            "first_account": s.first_account,
            "pairing": s.pairing.value,
            "rate_per_s": o.rate_per_s if self.open_loop else None,
            "duration_s": o.duration_s if self.open_loop else None,
            "warmup": o.warmup or None,
        }


def _allowed_target(host: str) -> bool:
    """Loopback, or an address of this machine's own lab (`orion lab`): nothing else."""
    if host in LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host) in LAB_NETWORK
    except ValueError:
        return False


def make_plan(o: BenchOptions, default_base_url: str, currency: str) -> Plan:
    """The checked plan; PlanError naming the option when something is out of range."""
    d = DEFAULTS[o.scenario]
    open_loop = o.scenario is Scenario.LATENCY
    count = _count(o, open_loop)
    clients = o.clients if o.clients is not None else d.clients
    accounts = o.accounts if o.accounts is not None else d.accounts
    per_request = o.batch_size if d.endpoint is Endpoint.BATCH else 1
    _check(o, clients, accounts, per_request)
    base = o.base_url or default_base_url
    if not _allowed_target(urlsplit(base).hostname or ""):
        raise PlanError(
            f"--base-url must be on loopback (127.0.0.1) or in the lab ({LAB_NETWORK}), got {base}"
        )
    shape = LoadShape(
        d.endpoint,
        count,
        per_request,
        accounts,
        SEED_FIRST_ACCOUNT,
        currency,
        d.pairing,
        new_id_prefix(),
    )
    return Plan(o, shape, clients, base.rstrip("/"), open_loop)


def warmup_options(o: BenchOptions, out_root: Path) -> BenchOptions:
    """The run before the measured one: the same scenario, shape and rate with `o.warmup`
    transfers, without baselines or audit (the measured run has both), reports under
    `out_root`."""
    return replace(
        o,
        count=o.warmup,
        duration_s=o.warmup / o.rate_per_s if o.rate_per_s > 0 else o.duration_s,
        baselines=False,
        audit=False,
        warmup=0,
        out_root=out_root,
    )


def _count(o: BenchOptions, open_loop: bool) -> int:
    if open_loop:
        if o.rate_per_s <= 0 or o.duration_s <= 0:
            raise PlanError("--rate and --duration must be positive")
        count = round(o.rate_per_s * o.duration_s)
    else:
        count = o.count or (COUNT_FULL if o.full else COUNT_DEFAULT)
    if not 1 <= count <= COUNT_MAX:
        raise PlanError(f"the run's transfers must be in 1..{COUNT_MAX:,} (got {count:,})")
    return count


def _check(o: BenchOptions, clients: int, accounts: int, per_request: int) -> None:
    if not 1 <= clients <= CLIENTS_MAX:
        raise PlanError(f"--clients must be in 1..{CLIENTS_MAX} (got {clients})")
    if not 2 <= accounts <= COUNT_MAX:
        raise PlanError(f"--accounts must be in 2..{COUNT_MAX} (got {accounts})")
    if not 1 <= per_request <= BATCH_SIZE_MAX:
        raise PlanError(f"--batch-size must be in 1..{BATCH_SIZE_MAX} (got {per_request})")
    if not 0 <= o.warmup <= COUNT_MAX:
        raise PlanError(f"--warmup must be in 0..{COUNT_MAX:,} (got {o.warmup:,})")
    if o.warmup and o.scenario is Scenario.GENERATOR:
        raise PlanError("--warmup does not apply to the generator scenario (nothing to warm)")
    if o.http_client not in HTTP_CLIENTS:
        raise PlanError(f"--http-client must be one of {', '.join(HTTP_CLIENTS)}")
    if not 1 <= o.workers <= WORKERS_MAX:
        raise PlanError(f"--workers must be in 1..{WORKERS_MAX} (got {o.workers})")
    for name, value in (
        ("--drain-timeout", o.drain_timeout_s),
        ("--time-limit", o.time_limit_s),
        ("--baseline-seconds", o.baseline_s),
    ):
        if value <= 0:
            raise PlanError(f"{name} must be positive (got {value})")
