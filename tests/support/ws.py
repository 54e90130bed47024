"""A WebSocket client for the inbox socket that answers the server's pings."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin


class InboxSocket:
    def __init__(
        self, ws_base: str, token: str, *, since: int | str | None = None, pong: bool = True
    ) -> None:
        url = f"{ws_base}/ws/inbox?token={token}"
        if since is not None:
            url += f"&since={since}"
        self.pong = pong
        self._stack = ExitStack()
        self.conn: ClientConnection = self._stack.enter_context(
            connect(
                url,
                origin=Origin("http://127.0.0.1"),
                proxy=None,
                open_timeout=15,
                ping_interval=None,  # the application heartbeat is what is under test
            )
        )

    def receive(self, timeout: float = 10.0) -> dict[str, Any]:
        """The next application message; server pings are answered and skipped."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no message")
            message = json.loads(self.conn.recv(timeout=remaining))
            if message["type"] == "ping":
                if self.pong:
                    self.conn.send(json.dumps({"type": "pong"}))
                continue
            return dict(message)

    def receive_type(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            message = self.receive(timeout=max(0.01, deadline - time.monotonic()))
            if message["type"] == kind:
                return message

    def collect(self, seconds: float) -> list[dict[str, Any]]:
        """Every application message that arrives within `seconds`."""
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                got.append(self.receive(timeout=remaining))
            except TimeoutError:
                break
        return got

    def close_code(self, timeout: float = 10.0) -> int | None:
        """Wait for the server to close the socket; its close code."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.conn.recv(timeout=max(0.01, deadline - time.monotonic()))
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else None
        except TimeoutError:
            return None
        return None

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> InboxSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
