"""A one-line progress bar on stderr (no dependency): redrawn in place on a terminal, a
plain line every few seconds otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_CHARS = 30
PLAIN_EVERY_S = 5.0  # when stderr is not a terminal
CLEAR_TO_EOL = "\x1b[K"  # a shorter line must not leave the end of the previous one


class Progress:
    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label, self.total = label, max(1, total)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._last_plain = 0.0

    def update(self, done: int, detail: str = "") -> None:
        elapsed = time.monotonic() - self.started
        if not self.tty and elapsed - self._last_plain < PLAIN_EVERY_S:
            return
        self._last_plain = elapsed
        line = self.line(done, elapsed, detail)
        self.stream.write(f"\r{line}{CLEAR_TO_EOL}" if self.tty else f"{line}\n")
        self.stream.flush()

    def line(self, done: int, elapsed_s: float, detail: str) -> str:
        frac = min(1.0, done / self.total)
        filled = round(frac * BAR_CHARS)
        bar = "#" * filled + "." * (BAR_CHARS - filled)
        return (
            f"{self.label} [{bar}] {frac:4.0%} {done:,}/{self.total:,} "
            f"{elapsed_s:5.1f}s {detail}".rstrip()
        )

    def finish(self, done: int, detail: str = "") -> None:
        elapsed = time.monotonic() - self.started
        line = self.line(done, elapsed, detail)
        self.stream.write(f"\r{line}{CLEAR_TO_EOL}\n" if self.tty else f"{line}\n")
        self.stream.flush()
