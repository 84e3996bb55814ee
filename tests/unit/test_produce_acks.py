"""The API's produce call hears every record's ack once (orion.adapters.api_kafka.Acks): the
request's loop is woken when the last transfer is answered, from whatever thread; a packed
record's answer answers every transfer it carries; a transfer never answered reads as a
timeout. And `pack` groups a call's transfers per partition, in order, within its bounds."""

from __future__ import annotations

import asyncio
import threading

import pytest

from orion.adapters.api_kafka import Acks
from orion.adapters.kafka import pack
from orion.messages import PACKED_BYTES_MAX, PACKED_TRANSFERS_MAX


def test_the_loop_hears_once_every_record_is_answered_from_another_thread() -> None:
    async def run() -> list[BaseException | None]:
        acks = Acks(asyncio.get_running_loop(), 500)
        refused = ValueError("record too large")

        def sender() -> None:  # kafka-python's sender thread, answering in any order
            for index in reversed(range(500)):
                if index == 7:
                    acks.answer((index,), refused)
                else:
                    acks.acked((index,), object())

        thread = threading.Thread(target=sender)
        thread.start()
        await asyncio.wait_for(asyncio.shield(acks.all_answered), 5)
        thread.join()
        return acks.errors(5)

    errors = asyncio.run(run())
    assert [i for i, e in enumerate(errors) if e is not None] == [7]
    assert isinstance(errors[7], ValueError)


def test_an_unanswered_record_is_a_timeout_and_a_late_answer_changes_nothing() -> None:
    async def run() -> tuple[list[BaseException | None], bool]:
        acks = Acks(asyncio.get_running_loop(), 3)
        acks.acked((0,), None)
        acks.answer((1,), RuntimeError("broker gone"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(acks.all_answered), 0.05)
        errors = acks.errors(0.05)
        acks.acked((1,), None)  # a repeated answer for a record is ignored
        acks.acked((2,), None)  # the last one, late: the future resolves, the read stays
        await asyncio.wait_for(asyncio.shield(acks.all_answered), 1)
        return errors, isinstance(acks.errors(1)[1], RuntimeError)

    errors, kept = asyncio.run(run())
    assert errors[0] is None
    assert isinstance(errors[1], RuntimeError)
    assert isinstance(errors[2], TimeoutError)
    assert kept


def test_no_records_are_answered_at_once() -> None:
    async def run() -> bool:
        acks = Acks(asyncio.get_running_loop(), 0)
        return acks.all_answered.done()

    assert asyncio.run(run())


def test_a_packed_record_answers_every_transfer_it_carries_once() -> None:
    async def run() -> tuple[list[BaseException | None], bool, bool]:
        acks = Acks(asyncio.get_running_loop(), 5)
        acks.acked((0, 2, 4), None)
        early = acks.all_answered.done()
        acks.answer((1, 3), RuntimeError("partition offline"))
        acks.acked((1, 3), None)  # a second answer for the same record changes nothing
        await asyncio.wait_for(asyncio.shield(acks.all_answered), 1)
        return acks.errors(1), early, acks.all_answered.done()

    errors, early, done = asyncio.run(run())
    assert not early and done
    assert [e is None for e in errors] == [True, False, True, False, True]


def test_pack_groups_per_partition_in_order() -> None:
    records = [(f"acc-{i % 3}".encode(), f'{{"n":{i}}}'.encode()) for i in range(10)]
    groups = pack(records, lambda key: int(key[-1:]))
    assert [(g.partition, g.indexes) for g in groups] == [
        (0, [0, 3, 6, 9]),
        (1, [1, 4, 7]),
        (2, [2, 5, 8]),
    ]
    assert all(g.values == [records[i][1] for i in g.indexes] for g in groups)


def test_pack_splits_a_group_at_its_bounds_keeping_order() -> None:
    many = [(b"k", b"{}")] * (PACKED_TRANSFERS_MAX * 2 + 1)
    sizes = [len(g.indexes) for g in pack(many, lambda _key: 0)]
    assert sizes == [PACKED_TRANSFERS_MAX, PACKED_TRANSFERS_MAX, 1]

    value = b"x" * (PACKED_BYTES_MAX // 3)
    groups = pack([(b"k", value)] * 7, lambda _key: 5)
    assert [g.indexes for g in groups] == [[0, 1], [2, 3], [4, 5], [6]]
    assert all(g.size <= PACKED_BYTES_MAX for g in groups)
    assert all(g.size == 2 + sum(len(v) + 1 for v in g.values) for g in groups)
