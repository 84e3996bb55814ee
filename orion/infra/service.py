"""What every Orion-managed server looks like to the infra manager.

A service knows its prerequisites, how to prepare its state once (format, initdb, config),
the argv to run it, how to tell it is ready, and what to do once ready (topics, roles).
"""

from __future__ import annotations

import shutil
import signal
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from orion.config import Settings
from orion.infra.process import Managed


@dataclass(frozen=True)
class Missing:
    """A prerequisite that is not installed, and how to get it."""

    what: str
    how: str

    def line(self) -> str:
        return f"missing prerequisite: {self.what} — {self.how}"


def need_binary(name: str, package: str) -> list[Missing]:
    if shutil.which(name):
        return []
    return [Missing(name, f"run `make install` (as root: apt-get install -y {package})")]


class Service(ABC):
    name: str = ""
    user: str | None = None  # the OS user to run as (PostgreSQL refuses to run as root)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        state = settings.state_dir.resolve()
        self.state = state
        self.dir = state / self.name
        self.managed = Managed(
            name=self.name,
            pid_file=state / "run" / f"{self.name}.pid",
            log_file=state / "logs" / f"{self.name}.log",
            stop_signal=self.stop_signal(),
        )

    @property
    @abstractmethod
    def address(self) -> str: ...

    def stop_signal(self) -> signal.Signals:
        """The signal that asks the server for a clean shutdown."""
        return signal.SIGTERM

    @abstractmethod
    def prerequisites(self) -> list[Missing]: ...

    @abstractmethod
    def prepare(self) -> None:
        """One-time and every-start preparation of state and config files."""

    @abstractmethod
    def argv(self) -> list[str]: ...

    @abstractmethod
    def ready(self) -> bool:
        """One readiness probe; may raise while the server is starting."""

    def after_ready(self) -> list[str]:
        """Work that needs the running server; returns warnings to print."""
        return []

    @abstractmethod
    def version(self) -> str: ...

    def data_dirs(self) -> list[Path]:
        return [self.dir]
