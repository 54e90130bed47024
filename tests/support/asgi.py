"""A real ASGI server (uvicorn) in its own process, against the test database and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.request
from pathlib import Path

from django.conf import settings

from tests.support.processes import BIN, ROOT, free_port, test_database_url, wait_until


class AsgiServer:
    """`uvicorn config.asgi:application` on a free port; `url` and `ws_url` point at it."""

    def __init__(
        self, *, env: dict[str, str] | None = None, name: str = "web", port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        self.log_path = ROOT / "var" / f"uvicorn-{name}-{os.getpid()}-{self.port}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        full_env = dict(os.environ)
        full_env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.test",
                "DATABASE_URL": test_database_url(),
                "REDIS_URL": settings.REDIS_URL,
                "PYTHONUNBUFFERED": "1",
            }
        )
        full_env.update(env or {})
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(  # noqa: S603
            [
                str(BIN / "uvicorn"),
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_until(self._healthy, timeout=30, interval=0.1)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"uvicorn did not start:\n{self.log()}") from None

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{self.log()}")
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:  # noqa: S310
                return bool(response.status == 200)
        except OSError:
            return False

    def log(self) -> str:
        return Path(self.log_path).read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()
