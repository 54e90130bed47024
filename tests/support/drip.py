"""A hostile webhook receiver for tests: a raw TCP server on 127.0.0.1 that reads the request
and then answers one byte per `every` seconds (the status line and headers, or a body after
prompt headers), for at most `for_seconds`; each connection in a thread of its own."""

from __future__ import annotations

import socket
import threading
import time


class DripReceiver:
    def __init__(self, *, body_only: bool = False, every: float = 1.0, for_seconds: float = 15.0):
        self.body_only = body_only
        self.every = every
        self.for_seconds = for_seconds
        self.connections = 0
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2.0)
            try:
                conn.recv(65536)  # the request (small: one read is enough here)
                if self.body_only:
                    conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n")
                    answer = b"x" * 1000
                else:
                    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
                ends = time.monotonic() + self.for_seconds
                for byte in answer:
                    if self._stop.is_set() or time.monotonic() > ends:
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(self.every)
            except OSError:
                return

    def stop(self) -> None:
        self._stop.set()
        self._server.close()
