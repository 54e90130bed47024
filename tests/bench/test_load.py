"""The paced load generator (bench/load.py) against a server that closes idle keep-alive
connections, as uvicorn does after 5 s: at a low paced rate each pooled connection sits idle
longer than that between two requests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from bench import load

SERVER_IDLE_TIMEOUT = 0.3  # seconds the test server keeps an idle connection open


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer 202 to each request; close the connection after SERVER_IDLE_TIMEOUT idle."""
    try:
        while True:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), SERVER_IDLE_TIMEOUT)
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
    except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


@pytest.fixture
def server_url() -> Iterator[str]:
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(_serve, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"

    async def shut_down() -> None:
        server.close()
        handlers = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)

    asyncio.run_coroutine_threadsafe(shut_down(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    loop.close()


def _paced(url: str, reopen_idle_after: float) -> load.LoadResult:
    # 4 connections at 5/s: each is reused every 0.8 s, longer than the server keeps it open.
    result, _ = load.paced(
        url,
        "/x",
        headers={},
        body_fn=lambda i: b"{}",
        rate=5,
        seconds=3,
        connections=4,
        reopen_idle_after=reopen_idle_after,
    )
    return result


def test_paced_client_reopens_connections_the_server_has_closed_for_idleness(
    server_url: str,
) -> None:
    result = _paced(server_url, reopen_idle_after=SERVER_IDLE_TIMEOUT / 2)

    assert result.statuses == {202: 15}


def test_reusing_a_connection_idle_past_the_servers_timeout_fails(server_url: str) -> None:
    # The failure the reopening prevents (what a paced in-app run at 10/s over 64 connections
    # met against uvicorn: 128 of 300 requests with status 0).
    result = _paced(server_url, reopen_idle_after=60)

    assert result.statuses.get(0, 0) >= 10
