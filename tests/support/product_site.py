"""A product's own web server on 127.0.0.1, for the pages that embed the notifier's bell: another
port is another origin, in the same address space (as a product and its notifier on one
network; Chromium refuses a public page's requests to loopback)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ProductSite:
    """`files` maps a path to (content type, body); `/` answers `page` (text/html)."""

    def __init__(self) -> None:
        self.page = ""
        self.files: dict[str, tuple[str, bytes]] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/":
                    kind, body = "text/html; charset=utf-8", site.page.encode()
                elif self.path in site.files:
                    kind, body = site.files[self.path]
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
