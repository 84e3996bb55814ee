"""PostgreSQL adapter: the only module that imports psycopg."""

from __future__ import annotations

import psycopg
from psycopg import sql

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
