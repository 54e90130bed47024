"""The real web process (uvicorn serving config.asgi) for tests that read its output."""

from __future__ import annotations

import os
import signal
import subprocess

from django.conf import settings

from tests.support.processes import BIN, ROOT, free_port, test_database_url, wait_port


class WebServer:
    """uvicorn on a free port against the test database; stdout and stderr go to a file."""

    def __init__(self, *, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = ROOT / "var" / f"web-{os.getpid()}-{self.port}.log"
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
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            wait_port(self.port, timeout=30)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"web did not start:\n{self.log()}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()
