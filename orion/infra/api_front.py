"""The API's front door: HAProxy (Debian's) on the API port, in front of the Serve replicas.

Why it exists: Serve's direct ingress makes each API replica serve HTTP on a port of its own,
from a range. A replica killed with -9 leaves its connections in TIME_WAIT, and Serve binds a
successor without SO_REUSEADDR, so the successor could not take the old port back for up to
a minute (and Serve then parks the port for 150 s): with the range set to the API port alone,
a crashed replica meant no API for 40-150 s. Here the replicas take ports from a range
(ORION_API_REPLICA_PORT and the API_REPLICA_PORTS - 1 after it), a successor simply takes the
next free one,
and HAProxy, which holds the API port for good, sends traffic to whichever replica answers
its health check. It is also how several replicas share one address.

Guarantees: listens on the configured host only (loopback by default), runs as a process
Orion owns by pid file, logs nothing per request, and retries a request on another replica
only when the connection could not be made (never a request a replica may have received).
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from orion.config import Settings
from orion.infra.process import Managed, run_once
from orion.infra.service import Missing, need_binary
from orion.priority import SERVICES_YIELD_ON_WAKEUP

API_REPLICA_PORTS = 8  # replicas + crashed ones whose port Serve still parks (150 s each)
HEALTH_PATH = "/healthz"  # answers while the replica's event loop runs
HEALTH_INTERVAL_MS = 500  # a successor is found within about a second of listening
HEALTH_FALL = 2  # two missed checks take a replica out
CONNECT_TIMEOUT_MS = 1_000  # loopback connects take microseconds
# A request may wait ~12 s for the broker, plus ?wait= up to 10 s for its outcome.
SERVER_TIMEOUT_MS = 30_000
CLIENT_TIMEOUT_MS = 60_000  # an idle keep-alive client is let go after this
# Ray Serve's request header (ray.serve._private.constants) for "do not watch the client".
DISCONNECT_DISABLED_HEADER = "x-request-disconnect-disabled"
INGEST_NO_QUERY = "ingest_route ingest_route_path !has_query"
MAXCONN = 4_096  # concurrent client connections; the seed's load test uses 200
CHECK_TIMEOUT_S = 30.0  # `haproxy -c` of a small config takes milliseconds
HTTP_TIMEOUT_S = 2.0


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )


class ApiFront:
    """HAProxy on host:api_port, balancing over the replica port range."""

    name = "api-front"

    def __init__(
        self, settings: Settings, backends: list[tuple[str, int]], *, across_nodes: bool = False
    ) -> None:
        """`backends`: (host, port) where the replicas listen (with direct ingress; on a
        cluster, every node's range) or Serve's own HTTP proxy (without it).

        `across_nodes`: the replicas are on other machines. One that is lost (power, network)
        sends no reset: its in-flight requests would hang for the server timeout. Taking it
        out of rotation then also cuts them, so clients retry at once (a retried
        transaction_id is safe). Not on one machine, where a crashed replica's connections
        are reset by the kernel and a check missed under load must not cut live requests."""
        self.settings = settings
        self.backends = backends
        self.across_nodes = across_nodes
        state = settings.state_dir.resolve()
        self.dir = state / self.name
        self.managed = Managed(
            self.name, state / "run" / "api-front.pid", state / "logs" / "api-front.log"
        )

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.api_port}"

    def prerequisites(self) -> list[Missing]:
        return need_binary("haproxy", "haproxy") if haproxy_binary() is None else []

    def config(self) -> str:
        servers = "\n".join(
            f"    server r{n}_{host.replace('.', '_')}_{port} {host}:{port} check"
            for n, (host, port) in enumerate(self.backends)
        )
        check = f"inter {HEALTH_INTERVAL_MS}ms fastinter {HEALTH_INTERVAL_MS}ms"
        if self.across_nodes:
            check += " on-marked-down shutdown-sessions"
        return f"""\
global
    maxconn {MAXCONN}
    nbthread 1

defaults
    mode http
    option http-keep-alive
    timeout connect {CONNECT_TIMEOUT_MS}ms
    timeout client {CLIENT_TIMEOUT_MS}ms
    timeout server {SERVER_TIMEOUT_MS}ms
    timeout http-keep-alive {CLIENT_TIMEOUT_MS}ms
    retries 2
    retry-on conn-failure
    option redispatch

frontend orion_api
    bind {self.address}
    # Serve watches every request's client for a hang-up, with an extra task per request,
    # to cancel its handler. An acceptance does not stop when its request is cancelled (its
    # micro-batch goes on), so for the ingest routes the watch is pure cost: ask Serve to
    # skip it. Not with a query string: a ?wait= should end when its client leaves.
    acl ingest_route method POST
    acl ingest_route_path path /transactions/ /v1/transfers /v1/transfers/batch
    acl has_query query -m found
    http-request set-header {DISCONNECT_DISABLED_HEADER} ?1 if {INGEST_NO_QUERY}
    default_backend orion_replicas

backend orion_replicas
    balance leastconn
    option httpchk GET {HEALTH_PATH}
    http-check expect status 200
    default-server {check} fall {HEALTH_FALL} rise 1
{servers}
"""

    def start(self) -> None:
        """Write the config, check it, start HAProxy (no-op when it already runs)."""
        if self.managed.pid() is not None:
            return
        binary = haproxy_binary()
        if binary is None:
            raise FileNotFoundError("haproxy is not installed: run `make install`")
        self.dir.mkdir(parents=True, exist_ok=True)
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(self.config())
        run_once([binary, "-c", "-q", "-f", str(cfg)], CHECK_TIMEOUT_S)
        self.managed.start(
            [binary, "-db", "-f", str(cfg)], yields_on_wakeup=SERVICES_YIELD_ON_WAKEUP
        )

    def serving(self) -> bool:
        """True when a replica answers /readyz through the front with 200."""
        url = f"http://{self.address}/readyz"
        try:
            with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def stop(self, timeout_s: float) -> bool:
        return self.managed.stop(timeout_s)
