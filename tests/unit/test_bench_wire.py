"""The benchmark's minimal HTTP/1.1 client (load/wire.py), fed bytes directly: no sockets."""

from __future__ import annotations

import asyncio

import httptools
import pytest

from load.wire import AnswerProtocol, Connection


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _answer(
    *pieces: bytes,
) -> tuple[AnswerProtocol, asyncio.Future[tuple[int, bytes]], FakeTransport]:
    """Feed `pieces` to a fresh protocol waiting for one answer; return it and its future."""
    proto, transport = AnswerProtocol(), FakeTransport()
    proto.connection_made(transport)
    proto.waiter = asyncio.get_running_loop().create_future()
    for piece in pieces:
        proto.data_received(piece)
    return proto, proto.waiter, transport


def test_an_answer_split_anywhere_is_one_status_and_body_and_keeps_the_connection() -> None:
    async def scenario() -> None:
        proto, fut, transport = _answer(
            b"HTTP/1.1 202 Accepted\r\nContent-Le", b'ngth: 7\r\n\r\n{"a"', b":1}"
        )
        assert fut.result() == (202, b'{"a":1}')
        assert proto.usable and not transport.closed

    asyncio.run(scenario())


def test_chunked_answers_are_joined() -> None:
    async def scenario() -> None:
        _, fut, _ = _answer(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
        assert fut.result() == (200, b"abcde")

    asyncio.run(scenario())


def test_connection_close_answers_then_retires_the_connection() -> None:
    async def scenario() -> None:
        proto, fut, transport = _answer(
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
        )
        assert fut.result() == (503, b"")
        assert transport.closed and not proto.usable

    asyncio.run(scenario())


def test_a_lost_connection_or_garbage_fails_the_waiting_request_by_its_class() -> None:
    async def scenario() -> None:
        proto, fut, _ = _answer(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{")
        proto.connection_lost(None)
        with pytest.raises(ConnectionResetError):
            fut.result()
        _, bad, _ = _answer(b"NOT HTTP AT ALL\r\n\r\n")
        with pytest.raises(httptools.HttpParserError):
            bad.result()

    asyncio.run(scenario())


def test_only_plain_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="plain http"):
        Connection("https://127.0.0.1:8000", 1.0)
    assert (Connection("http://127.0.0.1:8000", 1.0).port) == 8000
