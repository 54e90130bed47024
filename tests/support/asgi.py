"""A real ASGI server (uvicorn) in its own process, against the test database and Redis."""

from __future__ import annotations

import urllib.request

from tests.support.processes import BIN, LoggedProcess, listening_socket


class AsgiServer(LoggedProcess):
    """`uvicorn config.asgi:application` on a socket bound here (a free port, or `port` for a
    restart on the same address) and passed to it (`--fd`); `url` and `ws_url` point at it."""

    def __init__(
        self, *, env: dict[str, str] | None = None, name: str = "web", port: int | None = None
    ) -> None:
        listening = listening_socket(port or 0)
        self.port = int(listening.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        super().__init__(
            [
                str(BIN / "uvicorn"),
                "config.asgi:application",
                "--fd",
                str(listening.fileno()),
                "--no-access-log",
                # Open event streams (SSE) would otherwise hold a stop until they end.
                "--timeout-graceful-shutdown",
                "5",
            ],
            name=f"uvicorn-{name}",
            env=env,
            listening=listening,
        )
        self.wait_started(self._healthy, "uvicorn")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False
