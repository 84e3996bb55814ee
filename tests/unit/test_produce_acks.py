"""The API's produce call hears every record's ack once (orion.adapters.api_kafka.Acks): the
request's loop is woken when the last record is answered, from whatever thread, and a record
never answered reads as a timeout."""

from __future__ import annotations

import asyncio
import threading

import pytest

from orion.adapters.api_kafka import Acks


def test_the_loop_hears_once_every_record_is_answered_from_another_thread() -> None:
    async def run() -> list[BaseException | None]:
        acks = Acks(asyncio.get_running_loop(), 500)
        refused = ValueError("record too large")

        def sender() -> None:  # kafka-python's sender thread, answering in any order
            for index in reversed(range(500)):
                if index == 7:
                    acks.answer(index, refused)
                else:
                    acks.acked(index, object())

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
        acks.acked(0, None)
        acks.answer(1, RuntimeError("broker gone"))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.shield(acks.all_answered), 0.05)
        errors = acks.errors(0.05)
        acks.acked(1, None)  # a repeated answer for a record is ignored
        acks.acked(2, None)  # the last one, late: the future resolves, the read stays
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
