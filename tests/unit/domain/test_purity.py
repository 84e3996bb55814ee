"""The domain core imports nothing but the standard library and itself."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import orion.domain

DOMAIN_DIR = Path(orion.domain.__file__).parent


def imported_modules(path: Path) -> list[str]:
    """Absolute module names imported anywhere in the file (relative imports are local)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def is_allowed(module: str) -> bool:
    top = module.split(".", maxsplit=1)[0]
    return top in sys.stdlib_module_names or module.startswith("orion.domain")


def test_domain_imports_only_the_standard_library() -> None:
    """Every module under orion/domain imports only stdlib modules or orion.domain, so the
    core stays testable without Ray, Kafka, Redis, PostgreSQL or FastAPI."""
    files = sorted(DOMAIN_DIR.rglob("*.py"))
    assert len(files) >= 7
    offenders = {
        f"{path.relative_to(DOMAIN_DIR)}: {module}"
        for path in files
        for module in imported_modules(path)
        if not is_allowed(module)
    }
    assert not offenders, f"non-stdlib imports in orion/domain: {sorted(offenders)}"


def test_the_check_catches_a_forbidden_import(tmp_path: Path) -> None:
    """Positive control: the same check flags third-party and adapter imports."""
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nimport ray\nfrom orion.adapters import kafka\nfrom . import x\n")
    assert [m for m in imported_modules(bad) if not is_allowed(m)] == ["ray", "orion.adapters"]
