"""Versioned schema migrations: `NNNN_name.sql` files applied in order, each exactly once.

Each file runs in its own transaction together with its row in `schema_migrations`, under a
PostgreSQL advisory lock, so two concurrent `orion db migrate` runs cannot both apply one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def available(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every migration file, ordered by version; duplicate versions are an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        version_text, _, name = path.stem.partition("_")
        version = int(version_text)
        if version in found:
            raise ValueError(f"two migrations with version {version}: {path.name}")
        found[version] = Migration(version, name, path.read_text())
    return [found[v] for v in sorted(found)]
