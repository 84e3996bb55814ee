"""A missing prerequisite is one clear line saying what and how to get it — never a traceback."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from orion import cli
from orion.config import get_settings
from orion.infra import manager, service


def test_missing_binaries_are_listed(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no binaries on PATH, each service reports what is missing and how to install it."""
    monkeypatch.setattr(service.shutil, "which", lambda _name: None)
    missing = manager.missing_prerequisites(get_settings())
    names = {m.what for m in missing}
    assert {"java", "mvn", "redis-server", "prometheus"} <= names
    assert all("apt-get install" in m.line() or "make install" in m.line() for m in missing)


def test_cli_prints_one_line_per_missing_prerequisite(monkeypatch: pytest.MonkeyPatch) -> None:
    """`orion infra up` exits 2 with readable lines, no traceback, and starts nothing."""
    monkeypatch.setattr(service.shutil, "which", lambda _name: None)
    monkeypatch.setattr(manager, "up", pytest.fail)
    result = CliRunner().invoke(cli.app, ["infra", "up"])
    assert result.exit_code == 2
    assert "missing prerequisite: redis-server" in result.output
    assert "Traceback" not in result.output
