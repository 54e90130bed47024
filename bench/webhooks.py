"""`--webhook-receiver-sleep SECONDS`: the pipeline figures with a webhook endpoint subscribed to
`delivery.sent` whose receiver (an HTTP server on 127.0.0.1, here) sleeps that long before each
answer. A webhooks worker runs beside the channel workers, as in production: the figures show
whether a slow receiver holds up sends (it must not: own queue, own worker)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.seed import Seed


class SlowReceiver:
    """Answers 200 to every POST after `sleep` seconds; counts what it received."""

    def __init__(self, sleep: float) -> None:
        self.sleep = sleep
        self.received = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver._lock:
                    receiver.received += 1
                time.sleep(receiver.sleep)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def endpoint_register(seed: Seed, url: str) -> None:
    """The seed client's endpoint for `delivery.sent` (unseed deletes it with the client).
    Needs WEBHOOKS_ALLOW_PRIVATE in this process (python -m bench sets it with the flag)."""
    from apps.clients.models import ApiClient
    from apps.webhooks.services import endpoint_create

    endpoint_create(
        client=ApiClient.objects.get(pk=seed.client_id),
        url=url,
        events_=["delivery.sent"],
        description="bench: slow receiver",
        include_content=False,
    )
