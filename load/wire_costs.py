"""What the settle path's own serialisation costs per transfer, in this process.

`python -m load.wire_costs` builds one batch the way the orchestrator does (packed records
decoded by `decode_record`), then times, in microseconds per transfer (median of ROUNDS):
- decode: the orchestrator decoding packed records into queued transfers;
- dispatch: pickling the batch for the shard (the orchestrator) and unpickling it (the shard),
  with the cloudpickle Ray uses;
- answer: the same for the shard's answer (`Verdicts`);
- outcome: encoding one outcome for the results topic (the shard).

A microbenchmark: it says what a representation costs, not what the running system gains
(`orion bench` says that). It runs alone in one process and touches no service.
"""

from __future__ import annotations

import pickle
import statistics
import time
import uuid
from collections.abc import Callable

from orion.domain.model import Transfer
from orion.messages import (
    AcceptedTransfer,
    QueuedTransfer,
    Verdicts,
    decode_record,
    encode_outcome,
    encode_packed,
    encode_transfer,
    outcome_of,
)

BATCH_TRANSFERS = 870  # the mean batch a shard applied in `orion bench batch` (2026-12-04)
RECORD_TRANSFERS = 500  # the API packs up to this many transfers per record
ROUNDS = 7
REPEATS = 40  # calls per round
FIRST_ACCOUNT = 40817810111322211


def _batch() -> tuple[list[bytes], list[QueuedTransfer]]:
    """Packed records as the API writes them, and the batch the orchestrator decodes from them."""
    accepted = [
        AcceptedTransfer(
            Transfer(str(uuid.uuid4()), str(FIRST_ACCOUNT + i), str(FIRST_ACCOUNT + 9_999 - i),
                     100, "RUB"),
            1_764_800_000_000 + i,
        )
        for i in range(BATCH_TRANSFERS)
    ]  # fmt: skip
    records, batch = [], []
    for start in range(0, BATCH_TRANSFERS, RECORD_TRANSFERS):
        raw = encode_packed(
            [encode_transfer(a) for a in accepted[start : start + RECORD_TRANSFERS]]
        )
        records.append(raw)
        for index, found in decode_record(raw):
            assert isinstance(found, AcceptedTransfer)
            batch.append(QueuedTransfer(found, partition=0, offset=start, index=index))
    return records, batch


def _per_transfer_us(call: Callable[[], object], transfers: int) -> float:
    rounds = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        for _ in range(REPEATS):
            call()
        rounds.append((time.perf_counter() - began) / REPEATS / transfers * 1e6)
    return statistics.median(rounds)


def measure(dumps: Callable[[object], bytes] | None = None) -> dict[str, float]:
    """The costs, pickling with `dumps` (default: the cloudpickle Ray pickles arguments with)."""
    if dumps is None:
        # Imported here, not at the top: ray imported before orion.stack.use_local_ray()
        # would send a later driver in the same process to the GCS off loopback.
        from ray import cloudpickle

        dumps = cloudpickle.dumps
    records, batch = _batch()
    outcomes = [outcome_of(q, "completed", None, 1_764_800_000_123) for q in batch]
    verdicts = Verdicts.of(outcomes)
    sent, answered = dumps(batch), dumps(verdicts)
    n = len(batch)
    return {
        "decode": _per_transfer_us(lambda: [decode_record(r) for r in records], n),
        "dispatch pickle": _per_transfer_us(lambda: dumps(batch), n),
        "dispatch unpickle": _per_transfer_us(lambda: pickle.loads(sent), n),
        "answer pickle": _per_transfer_us(lambda: dumps(verdicts), n),
        "answer unpickle": _per_transfer_us(lambda: pickle.loads(answered), n),
        "outcome encode": _per_transfer_us(lambda: [encode_outcome(o) for o in outcomes], n),
        "dispatch bytes": len(sent) / n,
        "answer bytes": len(answered) / n,
    }


def main() -> None:
    for name, value in measure().items():
        unit = "bytes" if name.endswith("bytes") else "us"
        print(f"{name:18s} {value:7.2f} {unit} per transfer")


if __name__ == "__main__":
    main()
