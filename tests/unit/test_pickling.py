"""What crosses Ray (batches to shards, verdicts back) pickles to an equal value."""

from __future__ import annotations

import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orion.domain.model import Kind, Transfer, pickled_by_fields
from orion.messages import AcceptedTransfer, OutcomeRecord, QueuedTransfer, Verdicts

text = st.text(max_size=20)
ints = st.integers(min_value=0, max_value=2**62)
maybe_ints = st.none() | ints
transfers = st.builds(
    Transfer, text, text, text, ints, text, st.sampled_from(Kind), st.none() | text
)
metadata = st.none() | st.dictionaries(text, text | ints, max_size=3)
accepted = st.builds(AcceptedTransfer, transfers, ints, metadata, maybe_ints)
queued = st.builds(QueuedTransfer, accepted, ints, ints, maybe_ints)
reason = st.none() | text
outcomes = st.builds(OutcomeRecord, text, text, reason, text, text, ints, text, ints, ints)


@given(st.lists(queued, max_size=5), st.lists(outcomes, max_size=5))
def test_batches_and_outcomes_survive_pickling(
    batch: list[QueuedTransfer], results: list[OutcomeRecord]
) -> None:
    for value in (batch, results, Verdicts.of(results)):
        assert pickle.loads(pickle.dumps(value, protocol=5)) == value
    for before, after in zip(batch, pickle.loads(pickle.dumps(batch)), strict=True):
        # the fields computed after init come back too
        assert (after.id, after.debit_account_id) == (before.id, before.debit_account_id)


def test_a_class_with_one_field_is_refused() -> None:
    from dataclasses import dataclass

    with pytest.raises(TypeError, match="two init fields"):

        @pickled_by_fields
        @dataclass(frozen=True, slots=True)
        class Lonely:
            only: int


@given(st.lists(outcomes, max_size=5))
def test_verdicts_keep_each_outcomes_id_status_and_reason_in_order(
    results: list[OutcomeRecord],
) -> None:
    verdicts = Verdicts.of(results)
    got = list(zip(verdicts.ids, verdicts.statuses, verdicts.reasons, strict=True))
    assert got == [(o.transfer_id, o.status, o.reason) for o in results]
