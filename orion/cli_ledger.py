"""Ledger commands: `orion audit` and `orion accounts seed`, added to the CLI by `register`.

Failures the user can fix (a bad option, a bad setting) end in one line on stderr and exit 1;
an audit that finds violations prints them and exits 1 too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

import typer

from orion.adapters import ledger_seed
from orion.audit import UNSETTLED_AFTER_S_DEFAULT, run_audit
from orion.config import ConfigError, Settings, get_settings
from orion.domain.money import format_amount
from orion.messages import ORCHESTRATOR_GROUP
from orion.seeding import SEED_ACCOUNTS_MAX, SeedError, SeedPlan, SeedResult, plan_seed

T = TypeVar("T")
EXIT_FAILED = 1


def register(app: typer.Typer) -> None:
    """Add `audit` and the `accounts` group (with `seed`) to Orion's typer app."""
    app.command("audit")(audit)
    accounts = typer.Typer(no_args_is_help=True, help="Ledger accounts.")
    accounts.command("seed")(seed)
    app.add_typer(accounts, name="accounts")


def audit(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    group: Annotated[
        str, typer.Option(help="Consumer group whose committed offsets mean 'settled'.")
    ] = ORCHESTRATOR_GROUP,
    topic: Annotated[
        str | None, typer.Option(help="Transfers topic (default: ORION_TOPIC_TRANSFERS).")
    ] = None,
    unsettled_after: Annotated[
        float,
        typer.Option(
            min=0.0, help="Seconds after which an accepted transfer without outcome is a violation."
        ),
    ] = UNSETTLED_AFTER_S_DEFAULT,
) -> None:
    """Check the five ledger invariants, and that no transfer accepted more than
    --unsettled-after seconds ago is unsettled; exit 1 with the violations if any."""
    report = _run(
        lambda s: run_audit(s, group=group, topic=topic, unsettled_after_s=unsettled_after)
    )
    typer.echo(report.to_json() if as_json else "\n".join(report.lines()))
    if not report.ok:
        raise typer.Exit(EXIT_FAILED)


def seed(
    first: Annotated[int, typer.Option(help="First account id (a number, e.g. 17 digits).")],
    count: Annotated[int, typer.Option(help=f"How many accounts (1..{SEED_ACCOUNTS_MAX}).")],
    balance: Annotated[str, typer.Option(help="Opening balance in major units, e.g. 1000.00.")],
    currency: Annotated[
        str | None, typer.Option(help="ISO 4217 code (default: ORION_SEED_CURRENCY).")
    ] = None,
    overdraft_limit: Annotated[
        str, typer.Option(help="Overdraft limit in major units (0: none).")
    ] = "0",
) -> None:
    """Create accounts FIRST..FIRST+COUNT-1, each funded by an opening transfer from
    @world:<CUR>, in one transaction; accounts that already exist are left untouched."""

    def action(settings: Settings) -> tuple[SeedPlan, SeedResult]:
        cur = currency or settings.seed_currency
        plan = plan_seed(first, count, balance, cur, overdraft_limit)
        return plan, ledger_seed.seed(settings.postgres_dsn, plan)

    plan, result = _run(action)
    typer.echo(describe_seed(plan, result))


def describe_seed(plan: SeedPlan, result: SeedResult) -> str:
    funded = (
        f"funded with {format_amount(plan.balance, plan.currency)} {plan.currency} each "
        f"from {plan.world_account_id}"
        if plan.balance
        else "not funded (balance 0)"
    )
    return (
        f"accounts {plan.first}..{plan.last}: created {result.created}, "
        f"already existed {result.existing} (left untouched); {funded}; "
        f"{result.seconds:.1f} s"
    )


def _run(action: Callable[[Settings], T]) -> T:
    """Run with validated settings; a bad setting or option is one line on stderr, exit 1."""
    try:
        return action(get_settings())
    except (ConfigError, SeedError) as err:
        typer.echo(f"orion: {err}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
