"""After a run: did every accepted transfer get exactly one final row, and does the ledger
still satisfy its invariants (`orion audit`)?

`transfers.id` is the primary key, so a transfer has at most one row; "exactly one outcome"
therefore means: a row exists and its status is final (completed / rejected), not `claimed`.
Read-only; ids are looked up in chunks so memory does not grow with the run.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from orion.adapters import ledger
from orion.adapters.ledger_audit import final_statuses
from orion.audit import FINAL_STATUSES, run_audit
from orion.config import Settings

LOOKUP_IDS_MAX = 10_000  # ids per `= ANY(...)` query
EXAMPLES_MAX = 10


@dataclass(frozen=True, slots=True)
class OnceCheck:
    checked: int
    final: int
    missing: int  # accepted, but no transfers row at all
    not_final: int  # a row, still `claimed`
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.final == self.checked

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "final": self.final,
            "missing": self.missing,
            "not_final": self.not_final,
            "examples": self.examples,
        }


def exactly_once(dsn: str, ids: Sequence[str]) -> OnceCheck:
    with ledger.connect(dsn) as conn:
        return check_final(ids, lambda chunk: final_statuses(conn, chunk))


def check_final(ids: Sequence[str], lookup: Callable[[Sequence[str]], dict[str, str]]) -> OnceCheck:
    """Count ids whose status (by `lookup`, canonical id -> status) is final, missing or not."""
    final = missing = not_final = 0
    examples: list[str] = []
    for start in range(0, len(ids), LOOKUP_IDS_MAX):
        chunk = ids[start : start + LOOKUP_IDS_MAX]
        statuses = lookup(chunk)
        for transfer_id in chunk:
            status = statuses.get(transfer_id)
            if status in FINAL_STATUSES:
                final += 1
                continue
            missing += status is None
            not_final += status is not None
            if len(examples) < EXAMPLES_MAX:
                examples.append(f"{transfer_id}: {'no row' if status is None else status}")
    return OnceCheck(len(ids), final, missing, not_final, examples)


def audit(settings: Settings) -> dict[str, Any]:
    report = run_audit(settings)
    return {"ok": report.ok, "lines": report.lines()}
