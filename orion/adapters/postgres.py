"""PostgreSQL adapter: the only module that imports psycopg."""

from __future__ import annotations

from collections.abc import Sequence

import psycopg
from psycopg import sql

from orion.db.migrate import Migration

CONNECT_TIMEOUT_S = 5  # a local server answers at once; longer means it is not up


def ping(dsn: str) -> bool:
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        conn.execute("SELECT 1")
    return True


def server_version(dsn: str) -> str:
    with psycopg.connect(dsn, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def ensure_role_and_database(admin_dsn: str, user: str, password: str, database: str) -> None:
    """Create Orion's login role and database once; later calls keep the password in sync."""
    with psycopg.connect(admin_dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(
            sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)
            )
        )
        db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not db:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(database), sql.Identifier(user)
                )
            )


MIGRATION_LOCK_KEY = 0x6F72696F6E  # "orion": the advisory lock serialising migrations


def migrate(dsn: str, migrations: Sequence[Migration]) -> list[Migration]:
    """Apply the migrations not yet recorded; return those applied (empty: a no-op)."""
    applied: list[Migration] = []
    with psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in migrations:
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                applied.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied
