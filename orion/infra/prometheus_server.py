"""Prometheus from the Debian package, with a scrape config Orion generates.

It scrapes itself and every target in Ray's service-discovery file, which Ray rewrites as
nodes come and go (`<ray temp dir>/prom_metrics_service_discovery.json`).
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from orion.infra.service import Missing, Service, need_binary

HTTP_TIMEOUT_S = 2.0  # a local Prometheus answers at once
SCRAPE_INTERVAL = "5s"  # dashboards show rates over 30 s windows; 5 s keeps them smooth
# Prometheus watches the discovery file's directory; when that directory did not exist at its
# start (a fresh machine: Ray has not run yet) it only re-reads the file at this interval
# (default 5 min, which left every Ray target unscraped through a whole test run).
SD_REFRESH_INTERVAL = "5s"


class PrometheusServer(Service):
    name = "prometheus"

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.prometheus_port}"

    @property
    def config_file(self) -> str:
        return str(self.dir / "prometheus.yml")

    def prerequisites(self) -> list[Missing]:
        return need_binary("prometheus", "prometheus")

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        # Give the file watch a directory to watch before Ray first creates it.
        self.settings.ray_temp_dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "prometheus.yml").write_text(json.dumps(self.scrape_config(), indent=2))

    def scrape_config(self) -> dict[str, object]:
        """The generated config (JSON is valid YAML)."""
        sd_file = self.settings.ray_temp_dir / "prom_metrics_service_discovery.json"
        return {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "15s"},
            "scrape_configs": [
                {"job_name": "prometheus", "static_configs": [{"targets": [self.address]}]},
                {
                    "job_name": "ray",
                    "file_sd_configs": [
                        {"files": [str(sd_file)], "refresh_interval": SD_REFRESH_INTERVAL}
                    ],
                },
            ],
        }

    def argv(self) -> list[str]:
        return [
            "prometheus", f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.dir / 'data'}",
            f"--web.listen-address={self.address}", "--web.enable-lifecycle",
        ]  # fmt: skip

    def ready(self) -> bool:
        return self._get("/-/ready") is not None

    def version(self) -> str:
        body = self._get("/api/v1/status/buildinfo")
        return str(json.loads(body)["data"]["version"]) if body else "?"

    def data_dirs(self) -> list[Path]:
        return [self.dir / "data"]

    def _get(self, path: str) -> str | None:
        url = f"http://{self.address}{path}"
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
            return str(resp.read().decode()) if resp.status == 200 else None
