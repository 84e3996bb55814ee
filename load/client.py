"""One load-generator worker process: an event loop (uvloop when present) and an HTTP
client (load/wire.py by default, aiohttp on request).

Responsibilities: open a keep-alive connection pool to 127.0.0.1, announce readiness, wait
for the common start, send this worker's share of the requests (closed loop: `connections`
clients each sending its next request when the previous answered; open loop: at scheduled
times, see schedule.py), classify every answer, and hand back compact per-request arrays.

Guarantees:
- Bounded: no request starts after `time_limit_s`; every request has a total timeout.
- Nothing is retried: an error is counted by kind ("http 503", "ServerDisconnectedError").
- Times are offsets in seconds from the run's common start t0 (wall clock, shared by all
  workers), so the parent merges workers without translating clocks.
"""

from __future__ import annotations

import asyncio
import json
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event
from typing import Any

import aiohttp
import httptools

from load import wire
from load.schedule import open_loop_schedule, run_open_loop
from load.shapes import Endpoint, LoadShape

OK = "ok"
ERROR_SAMPLE_CHARS_MAX = 200  # one answer body per error kind, enough to see why
START_WAIT_S = 60.0  # the parent starts every worker within this, or the run is off
_ACCEPTED_STATUS = {Endpoint.SEED: 200, Endpoint.TRANSFER: 202, Endpoint.BATCH: 200}
_JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class WorkerJob:
    shape: LoadShape
    base_url: str
    worker: int
    workers: int
    connections: int  # this worker's clients (closed loop) / connection pool (open loop)
    time_limit_s: float  # no request starts later than this after t0
    request_timeout_s: float
    rate_per_s: float | None = None  # None: closed loop; else this is the whole run's rate
    duration_s: float = 0.0  # open loop only
    http_client: str = "wire"  # wire.py (the cheapest), or "aiohttp" as a cross-check

    def requests(self) -> range:
        return range(self.worker, self.shape.requests, self.workers)


@dataclass(slots=True)
class WorkerResult:
    """Per request: start (due time in open loop), latency, kind and accepted transfers."""

    worker: int
    starts_s: array[float] = field(default_factory=lambda: array("d"))
    latencies_s: array[float] = field(default_factory=lambda: array("d"))
    kinds: array[int] = field(default_factory=lambda: array("H"))
    accepted_items: array[int] = field(default_factory=lambda: array("H"))
    accepted: array[int] = field(default_factory=lambda: array("q"))  # transfer indices
    kind_names: list[str] = field(default_factory=lambda: [OK])
    item_errors: Counter[str] = field(default_factory=Counter)
    error_samples: dict[str, str] = field(default_factory=dict)
    cpu_s: float = 0.0

    def record(self, start_s: float, latency_s: float, kind: str, accepted: list[int]) -> None:
        if kind not in self.kind_names:
            self.kind_names.append(kind)
        self.starts_s.append(start_s)
        self.latencies_s.append(latency_s)
        self.kinds.append(self.kind_names.index(kind))
        self.accepted_items.append(len(accepted))
        self.accepted.extend(accepted)


@dataclass(frozen=True, slots=True)
class Answer:
    kind: str
    accepted: list[int]
    item_errors: Counter[str]


def classify(endpoint: Endpoint, status: int, raw: bytes, transfers: range) -> Answer:
    """What one HTTP answer means: its kind, the transfer indices it accepted, and (batch)
    the per-item errors by kind."""
    if status != _ACCEPTED_STATUS[endpoint]:
        return Answer(f"http {status}", [], Counter())
    if endpoint is not Endpoint.BATCH:
        return Answer(OK, list(transfers), Counter())
    try:
        results = json.loads(raw)["results"]
        accepted = [transfers[r["index"]] for r in results if r["status"] == "accepted"]
        errors = Counter(
            f"item {r.get('http_status')}" for r in results if r["status"] != "accepted"
        )
    except (ValueError, KeyError, TypeError, IndexError):
        return Answer("bad batch answer", [], Counter())
    return Answer(OK, accepted, errors)


Post = Callable[[bytes], Awaitable[tuple[int, bytes]]]  # body -> (status, answer body)
_ERRORS = (aiohttp.ClientError, httptools.HttpParserError, OSError, TimeoutError)
PROGRESS_SLOTS = 3  # per worker, in the shared progress array: requests, accepted, errors
# A closed-loop client pauses this long after a connection-level failure, so an API that
# is restarting is not hammered through the rest of the run in a second (not in latency).
CONNECTION_ERROR_PAUSE_S = 0.1


class _Sender:
    """Sends one request, times it, classifies it and records it; never raises."""

    def __init__(self, job: WorkerJob, progress: Any) -> None:
        self.job, self.progress = job, progress
        self.result = WorkerResult(job.worker)
        self.mono_t0 = 0.0  # time.monotonic() at the run's t0, set at the start

    def now_s(self) -> float:
        # Not loop.time(): uvloop's clock has millisecond steps, too coarse for latency.
        return time.monotonic() - self.mono_t0

    async def send(self, post: Post, request: int, due_s: float | None = None) -> bool:
        """True when the request failed without an HTTP answer (refused, reset, timeout)."""
        shape = self.job.shape
        body = shape.body(request)
        start_s = self.now_s() if due_s is None else due_s
        no_answer = False
        try:
            status, raw = await post(body)
            answer = classify(shape.endpoint, status, raw, shape.transfers_of(request))
        except _ERRORS as err:
            no_answer = True
            answer, raw = Answer(type(err).__name__, [], Counter()), str(err).encode()
        self.result.record(start_s, self.now_s() - start_s, answer.kind, answer.accepted)
        self.result.item_errors.update(answer.item_errors)
        if answer.kind != OK and answer.kind not in self.result.error_samples:
            text = raw[:ERROR_SAMPLE_CHARS_MAX].decode(errors="replace")
            self.result.error_samples[answer.kind] = text
        slot = PROGRESS_SLOTS * self.job.worker
        self.progress[slot] += 1
        self.progress[slot + 1] += len(answer.accepted)
        self.progress[slot + 2] += answer.kind != OK
        return no_answer


class _Transport:
    """Where requests go: one connection per closed-loop client, or a shared pool."""

    def __init__(self, job: WorkerJob) -> None:
        self.job = job
        self.url = job.base_url.rstrip("/") + job.shape.endpoint.value
        self.path = job.shape.endpoint.value
        self._wires: list[wire.Connection | wire.Pool] = []
        self._session: aiohttp.ClientSession | None = None
        if job.http_client == "aiohttp":
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=job.connections, limit_per_host=job.connections
                ),
                timeout=aiohttp.ClientTimeout(total=job.request_timeout_s),
                auto_decompress=False,
            )

    def dedicated(self) -> Post:
        if self._session is not None:
            return self._aiohttp_post
        conn = wire.Connection(self.job.base_url, self.job.request_timeout_s)
        self._wires.append(conn)
        return lambda body: conn.post(self.path, body)

    def shared(self) -> Post:
        if self._session is not None:
            return self._aiohttp_post
        pool = wire.Pool(self.job.base_url, self.job.connections, self.job.request_timeout_s)
        self._wires.append(pool)
        return lambda body: pool.post(self.path, body)

    async def _aiohttp_post(self, body: bytes) -> tuple[int, bytes]:
        if self._session is None:
            raise RuntimeError("no aiohttp session")
        async with self._session.post(self.url, data=body, headers=_JSON) as resp:
            return resp.status, await resp.read()

    async def warm(self) -> None:
        """Open every wire connection now, so the run starts without a burst of handshakes
        (aiohttp connects lazily: its handshakes stay in the first requests' latency)."""
        await asyncio.gather(*(w.connect() for w in self._wires))

    async def aclose(self) -> None:
        for w in self._wires:
            w.close()
        if self._session is not None:
            await self._session.close()


async def _closed_loop(sender: _Sender, posts: list[Post]) -> None:
    requests = iter(sender.job.requests())  # shared by the clients: one loop, no race

    async def client(post: Post) -> None:
        for request in requests:
            if sender.now_s() > sender.job.time_limit_s:
                return
            if await sender.send(post, request):
                await asyncio.sleep(CONNECTION_ERROR_PAUSE_S)

    await asyncio.gather(*(client(post) for post in posts))


async def _open_loop(sender: _Sender, post: Post) -> None:
    job = sender.job
    if job.rate_per_s is None:
        raise ValueError("open loop needs a rate")
    schedule = open_loop_schedule(job.rate_per_s, job.duration_s, job.worker, job.workers)
    due = [(k, t) for k, t in schedule if t <= job.time_limit_s]

    async def send(request: int, due_mono: float) -> None:
        await sender.send(post, request, due_mono - sender.mono_t0)  # no pause: the schedule rules

    await run_open_loop(due, sender.mono_t0, send, time.monotonic)


async def _work(
    job: WorkerJob, queue: Queue[Any], progress: Any, go: Event, t0: Synchronized[float]
) -> WorkerResult:
    sender, transport = _Sender(job, progress), _Transport(job)
    closed = job.rate_per_s is None
    try:
        posts = [transport.dedicated() for _ in range(job.connections)] if closed else []
        shared = None if closed else transport.shared()
        await transport.warm()
        queue.put(("ready", job.worker, None))
        if not await asyncio.to_thread(go.wait, START_WAIT_S):
            raise TimeoutError(f"worker {job.worker}: no start within {START_WAIT_S} s")
        sender.mono_t0 = time.monotonic() - (time.time() - t0.value)
        await asyncio.sleep(max(0.0, -sender.now_s()))  # t0 may lie slightly ahead
        cpu = time.process_time()
        if shared is None:
            await _closed_loop(sender, posts)
        else:
            await _open_loop(sender, shared)
        sender.result.cpu_s = time.process_time() - cpu
    finally:
        await transport.aclose()
    return sender.result


def worker_main(
    job: WorkerJob, queue: Queue[Any], progress: Any, go: Event, t0: Synchronized[float]
) -> None:
    """Process entry point: puts ("ready", w, None), then ("result", w, WorkerResult) or
    ("failed", w, reason) on `queue`."""
    try:
        result = _runner()(_work(job, queue, progress, go, t0))
    except Exception as err:  # noqa: BLE001 - reported to the parent, which fails the run
        queue.put(("failed", job.worker, f"{type(err).__name__}: {err}"))
        return
    queue.put(("result", job.worker, result))


def _runner() -> Callable[[Coroutine[Any, Any, WorkerResult]], WorkerResult]:
    try:
        import uvloop
    except ImportError:
        return asyncio.run
    return uvloop.run
