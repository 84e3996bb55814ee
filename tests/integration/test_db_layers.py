"""load/db_layers.py: every layer applies all its transfers (it checks), in a scratch schema."""

from __future__ import annotations

import psycopg
import pytest

from load import db_layers
from orion.config import Settings

LEDGER_TABLES = ("accounts", "transfers", "entries")


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        return {
            t: int(conn.execute(f"SELECT count(*) FROM public.{t}").fetchone()[0])  # type: ignore[index]
            for t in LEDGER_TABLES
        }


@pytest.mark.usefixtures("audited")
def test_layers_run_in_scratch_schema_and_leave_the_ledger_alone(settings: Settings) -> None:
    before = _counts(settings.postgres_dsn)
    rates = db_layers.run(settings, transfers=2_500, rounds=1)
    assert set(rates) == set(db_layers.LAYERS)
    assert all(len(v) == 1 and v[0] > 0 for v in rates.values())
    assert _counts(settings.postgres_dsn) == before
    with psycopg.connect(settings.postgres_dsn) as conn:
        schema = conn.execute(
            "SELECT 1 FROM pg_namespace WHERE nspname = %s", (db_layers.SCHEMA,)
        ).fetchone()
    assert schema is None, "the scratch schema is dropped"
