"""Real processes for tests: provider simulators and Celery workers, on free local ports,
against the test database and Redis. The machinery is the shared harness/processes.py."""

from __future__ import annotations

import os
import socket
import subprocess

from django.conf import settings

from harness.processes import (
    BIN,
    ROOT,
    Proc,
    Simulator,
    celery_beat_argv,
    celery_worker_argv,
    free_port,
    listening_socket,
    wait_port,
    wait_until,
)

# What tests/ import from here, the shared part included.
__all__ = [
    "BIN",
    "ROOT",
    "Beat",
    "LoggedProcess",
    "Simulator",
    "Worker",
    "free_port",
    "listening_socket",
    "run_to_exit",
    "test_database_url",
    "wait_port",
    "wait_until",
]


def run_to_exit(
    argv: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in the checkout until it exits; its output as text."""
    return subprocess.run(  # noqa: S603
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes the tests start."""
    db = settings.DATABASES["default"]
    user = db.get("USER") or "postgres"
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


class LoggedProcess(Proc):
    """A project command in its own session, against the test database and Redis, its output
    in var/<name>-<pid>-<n>.log; `stop()` ends the whole process group."""

    def __init__(
        self,
        command: list[str],
        *,
        name: str,
        env: dict[str, str] | None,
        listening: socket.socket | None = None,
    ) -> None:
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
        super().__init__(name, command, full_env, unique_log=True, listening=listening)


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
            celery_worker_argv(
                queues=queues,
                pool=pool,
                concurrency=concurrency,
                name=name,
                loglevel="INFO",
                fair=False,
            ),
            name=f"worker-{name}",
            env=env,
        )
        self.wait_started(lambda: b" ready." in self.log_path.read_bytes(), "worker")


class Beat(LoggedProcess):
    """Celery beat with the project's schedule (periods from the environment, e.g.
    RELEASE_EVERY_SECONDS), its state file at `schedule`."""

    def __init__(self, *, schedule: str, env: dict[str, str] | None = None) -> None:
        super().__init__(celery_beat_argv(schedule=schedule, loglevel="INFO"), name="beat", env=env)
