"""A small HTTP proxy on 127.0.0.1 in front of the real service that loses answers: the first
`lose` requests reach the service and are acted on, then the connection is closed without their
answer (as when a load balancer or the network drops it). The rest are forwarded as they are."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

# Hop-by-hop headers the proxy does not pass on (RFC 9110 7.6.1), and the ones httpx sets.
NOT_FORWARDED = frozenset({"connection", "keep-alive", "transfer-encoding", "host"})


class LossyProxy:
    def __init__(self, upstream: str, lose: int = 1) -> None:
        self.lost = 0
        self.forwarded = 0
        proxy = self
        http = httpx.Client(base_url=upstream, timeout=30)

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                answer = http.request(
                    self.command,
                    self.path,
                    content=self.rfile.read(length),
                    headers={
                        k: v for k, v in self.headers.items() if k.lower() not in NOT_FORWARDED
                    },
                )
                if proxy.lost < lose:  # acted on by the service; its answer never arrives
                    proxy.lost += 1
                    self.close_connection = True
                    return
                proxy.forwarded += 1
                self.send_response(answer.status_code)
                for name, value in answer.headers.items():
                    if name.lower() not in NOT_FORWARDED | {"content-length", "content-encoding"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = http
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.http.close()
