"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 in a thread, answering from a
script (status, headers, body, delay or gate per request; the last answer repeats), recording
what it received (headers lower-cased, raw body)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    # Held until this is set (at most a minute), after the delay.
    gate: threading.Event | None = None


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def verified(self, secret: str) -> Any:
        """The body as the Standard Webhooks library verifies it with `secret` (raises if not)."""
        return Webhook(secret).verify(self.body, self.headers)


class Receiver:
    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies) or [Reply()]
        self.received: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(
                        Received(
                            path=self.path,
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                            at=time.time(),
                        )
                    )
                    index = min(len(receiver.received), len(receiver.replies)) - 1
                    reply = receiver.replies[index]
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.gate is not None:
                    reply.gate.wait(timeout=60)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def script(self, *replies: Reply) -> None:
        """Answer these from now on (the count of requests starts again)."""
        with self._lock:
            self.replies = list(replies)
            self.received.clear()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
