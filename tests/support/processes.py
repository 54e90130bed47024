"""Real processes for tests: provider simulators and Celery workers, on free local ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


def wait_until(predicate: Any, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Poll `predicate` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)


class Simulator:
    """A provider simulator in its own process, with its control API."""

    def __init__(self, provider: str, env: dict[str, str] | None = None) -> None:
        self.provider = provider
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "simulators", provider, "--port", str(self.port)],
            cwd=ROOT,
            env={**os.environ, **(env or {})},
        )
        wait_port(self.port)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - local simulator
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def reset(self) -> None:
        self._call("POST", "/_sim/reset")

    def fault(self, **fault: Any) -> None:
        self._call("POST", "/_sim/faults", fault)

    def clear_faults(self) -> None:
        self._call("DELETE", "/_sim/faults")

    def requests(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/_sim/requests"))

    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if 200 <= r["status"] < 300]

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes the tests start."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


class LoggedProcess:
    """A project command in its own session, against the test database and Redis, its output
    in var/<name>-<pid>-<n>.log; `stop()` ends the whole process group."""

    def __init__(self, command: list[str], *, name: str, env: dict[str, str] | None) -> None:
        self.log_path = ROOT / "var" / f"{name}-{os.getpid()}-{free_port()}.log"
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
            command,
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_started(self, ready: Any, what: str) -> None:
        """Wait until `ready()`; stop the process and fail with its log if it never is."""
        try:
            wait_until(ready, timeout=30, interval=0.1)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{what} did not start:\n{self.log()}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()


class Worker(LoggedProcess):
    """A real Celery worker process consuming the given queues, against the test database."""

    def __init__(
        self,
        *,
        queues: list[str],
        env: dict[str, str] | None = None,
        pool: str = "threads",
        concurrency: int = 4,
        name: str = "test",
    ) -> None:
        super().__init__(
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                "-Q",
                ",".join(queues),
                "-P",
                pool,
                "-c",
                str(concurrency),
                "-n",
                f"{name}-{free_port()}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel",
                "INFO",
            ],
            name=f"worker-{name}",
            env=env,
        )
        self.wait_started(lambda: b" ready." in self.log_path.read_bytes(), "worker")
