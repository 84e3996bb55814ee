"""The `orion` command line. Every failure ends in one readable line and a non-zero exit."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from orion import stack
from orion import status as status_module
from orion.adapters import postgres as pg
from orion.cli_bench import register as register_bench_commands
from orion.cli_cluster import register as register_cluster_commands
from orion.cli_ledger import register as register_ledger_commands
from orion.config import ConfigError, Settings, get_settings
from orion.db import migrate
from orion.infra import manager
from orion.infra.process import ServiceError

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False
)
infra_app = typer.Typer(no_args_is_help=True, help="Kafka, PostgreSQL, Redis, Prometheus.")
app.add_typer(infra_app, name="infra")
db_app = typer.Typer(no_args_is_help=True, help="The ledger schema in PostgreSQL.")
app.add_typer(db_app, name="db")
register_ledger_commands(app)
register_bench_commands(app)
register_cluster_commands(app)

T = TypeVar("T")
EXIT_FAILED = 1
EXIT_PREREQUISITE = 2


def _echo(line: str) -> None:
    typer.echo(line)


def _run(action: Callable[[Settings], T]) -> T:
    """Run with validated settings, turning expected failures into one line on stderr."""
    try:
        return action(get_settings())
    except ConfigError as err:
        typer.echo(f"orion: {err}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except ServiceError as err:
        typer.echo(f"orion: {err}", err=True)
        raise typer.Exit(EXIT_FAILED) from None


def _require_prerequisites(settings: Settings) -> None:
    missing = manager.missing_prerequisites(settings)
    for item in missing:
        typer.echo(f"orion: {item.line()}", err=True)
    if missing:
        raise typer.Exit(EXIT_PREREQUISITE)


def _infra_up(settings: Settings) -> None:
    _require_prerequisites(settings)
    manager.up(settings, _echo)
    for health in manager.status(settings):
        _echo(health.line())


@infra_app.command("up")
def infra_up() -> None:
    """Start every service that is not running; wait until all are ready."""
    _run(_infra_up)


@infra_app.command("down")
def infra_down(
    purge: Annotated[bool, typer.Option(help="Also delete the services' data.")] = False,
) -> None:
    """Stop what Orion started (by pid); data is kept unless --purge."""
    _run(lambda s: manager.down(s, _echo, purge=purge))


@infra_app.command("status")
def infra_status() -> None:
    """One line per service: name, up/down, address, version, memory. Exit 1 if any is down."""
    report = _run(manager.status)
    for health in report:
        _echo(health.line())
    if not all(h.up for h in report):
        raise typer.Exit(EXIT_FAILED)


@infra_app.command("logs")
def infra_logs(
    name: Annotated[str, typer.Argument(help="postgres, redis, kafka or prometheus")],
    lines: Annotated[int, typer.Option("-n", help="How many lines from the end.")] = 50,
) -> None:
    """Print the end of one service's log (and its path)."""
    svc = _run(lambda s: manager.find(s, name))
    _echo(f"==> {svc.managed.log_file}")
    _echo(svc.managed.log_tail(lines))


def _migrate(settings: Settings) -> None:
    applied = pg.migrate(settings.postgres_dsn, migrate.available())
    for migration in applied:
        _echo(f"applied migration {migration.version:04d} {migration.name}")
    if not applied:
        _echo("schema up to date: nothing to apply")


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply schema migrations not yet applied (a second run is a no-op)."""
    _run(_migrate)


def _up(settings: Settings) -> None:
    _require_prerequisites(settings)
    for item in stack.api_front(settings).prerequisites() if settings.api_front else []:
        typer.echo(f"orion: {item.line()}", err=True)
        raise typer.Exit(EXIT_PREREQUISITE)
    stack.up(settings, _echo)


@app.command("up")
def up() -> None:
    """Start everything: infra, schema, local Ray, shards, orchestrator and the API."""
    _run(_up)


@app.command("down")
def down(
    purge: Annotated[bool, typer.Option(help="Also delete the services' data.")] = False,
) -> None:
    """Drain and stop everything Orion started on this machine; data is kept unless --purge."""
    _run(lambda s: stack.down(s, _echo, purge=purge))


@app.command("status")
def status() -> None:
    """Infrastructure health, settlement per partition (stuck?), actor restarts and the
    orchestrator's counters. Exit 1 when a service is down, a partition is stuck or the
    orchestrator does not answer."""
    report = _run(manager.status)
    for health in report:
        _echo(health.line())
    healthy = _run(lambda s: status_module.app_status(s, _echo))
    if not (healthy and all(h.up for h in report)):
        raise typer.Exit(EXIT_FAILED)


def main() -> None:
    """Entry point: an unexpected error is one line unless ORION_DEBUG asks for the traceback."""
    try:
        app(prog_name="orion", standalone_mode=True)
    except Exception as err:  # the last line of defence: one line, or re-raised in debug
        if os.environ.get("ORION_DEBUG"):
            raise
        typer.echo(f"orion: {type(err).__name__}: {err}".splitlines()[0], err=True)
        raise SystemExit(EXIT_FAILED) from None


if __name__ == "__main__":
    main()
