"""PostgreSQL from the Debian packages, in a cluster directory of Orion's own.

initdb runs once with a generated superuser password (kept 0600 under the state dir); Orion's
login role and database are created on every `up` if missing. When run as root, the server
runs as the `postgres` OS user, because PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import os
import pwd
import secrets
import signal
from pathlib import Path

from orion.adapters import postgres as pg
from orion.infra.process import ServiceError, run_once
from orion.infra.service import Missing, Service

INITDB_TIMEOUT_S = 120  # initdb of an empty cluster takes a few seconds
SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",  # API replicas + shard actors + tools, with headroom
    "shared_buffers": "256MB",
    "max_wal_size": "2GB",  # fewer checkpoints under batched load
    "synchronous_commit": "on",  # settled money must survive a crash
}
OS_USER = "postgres"


def _bindir() -> Path | None:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


def _require_bindir() -> Path:
    bindir = _bindir()
    if bindir is None:
        raise ServiceError("postgres: server binaries not found under /usr/lib/postgresql")
    return bindir


class PostgresServer(Service):
    name = "postgres"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.user = OS_USER if os.geteuid() == 0 else None

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.settings.postgres_port}"

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def password_file(self) -> Path:
        return self.dir / "superuser.pw"

    def stop_signal(self) -> signal.Signals:
        return signal.SIGINT  # "fast" shutdown: roll back open transactions, checkpoint, exit

    def prerequisites(self) -> list[Missing]:
        if _bindir() is None:
            return [Missing("PostgreSQL server", "run `make install` (apt-get install postgresql)")]
        if os.geteuid() == 0:
            try:
                pwd.getpwnam(OS_USER)
            except KeyError:
                return [Missing("the postgres OS user", "reinstall the postgresql package")]
        return []

    def prepare(self) -> None:
        if (self.data / "PG_VERSION").exists():
            self._allow_clients()
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        self.password_file.write_text(secrets.token_urlsafe(24))
        self.password_file.chmod(0o600)
        self._own(self.dir, self.password_file)
        cmd = [
            str(_require_bindir() / "initdb"), "-D", str(self.data), "-U", "postgres", "-E", "UTF8",
            "--no-locale", "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
            f"--pwfile={self.password_file}",
        ]  # fmt: skip
        run_once(cmd, INITDB_TIMEOUT_S, user=self.user)
        self._allow_clients()

    def _allow_clients(self) -> None:
        """Password logins from ORION_POSTGRES_CLIENTS too (a cluster's nodes), besides
        loopback, which initdb allows already."""
        hba = self.data / "pg_hba.conf"
        line = f"host all all {self.settings.postgres_clients} scram-sha-256  # orion\n"
        lines = [x for x in hba.read_text().splitlines(keepends=True) if "# orion" not in x]
        hba.write_text("".join(lines) + line)
        self._own(hba)

    def argv(self) -> list[str]:
        bindir = _require_bindir()
        run = self.dir / "socket"
        run.mkdir(exist_ok=True)
        self._own(run)
        settings = dict(SERVER_SETTINGS, port=str(self.settings.postgres_port))
        settings["listen_addresses"] = self.settings.host
        settings["unix_socket_directories"] = str(run)
        flags = [arg for k, v in settings.items() for arg in ("-c", f"{k}={v}")]
        return [str(bindir / "postgres"), "-D", str(self.data), *flags]

    def ready(self) -> bool:
        return pg.ping(self.admin_dsn)

    def after_ready(self) -> list[str]:
        s = self.settings
        pg.ensure_role_and_database(
            self.admin_dsn, s.postgres_user, s.postgres_password, s.postgres_db
        )
        return []

    def version(self) -> str:
        return pg.server_version(self.admin_dsn).split()[0]

    @property
    def admin_dsn(self) -> str:
        password = self.password_file.read_text().strip()
        return (
            f"host={self.settings.host} port={self.settings.postgres_port} dbname=postgres "
            f"user=postgres password={password}"
        )

    def _own(self, *paths: Path) -> None:
        if self.user is None:
            return
        entry = pwd.getpwnam(self.user)
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)
