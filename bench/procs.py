"""The processes a benchmark starts (web, workers, beat, simulators), their logs in var/bench/.

The machinery (own process group, stop by PID, RSS) is the shared harness (harness/processes.py).
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import harness.processes as harness
from harness.processes import (
    BIN,
    REGISTRY,
    ROOT,
    Proc,
    celery_beat_argv,
    celery_worker_argv,
    free_port,
    install_signal_handlers,
    stop_all,
    wait_port,
    wait_until,
)
from harness.serving import healthy

LOG_DIR = ROOT / "var" / "bench"
# What bench/ imports from here, the shared part included.
__all__ = [
    "REGISTRY",
    "Beat",
    "Proc",
    "RssSampler",
    "Simulator",
    "Web",
    "Worker",
    "install_signal_handlers",
    "stop_all",
    "wait_until",
]


class Simulator(harness.Simulator):
    def __init__(self, provider: str, env: dict[str, str]) -> None:
        super().__init__(provider, env, log_dir=LOG_DIR)


class Web(Proc):
    """The whole app (REST and /ws/) under uvicorn with several worker processes, as `make run`
    serves it; the Procfile's web is gunicorn (harness.serving.Gunicorn)."""

    def __init__(self, env: dict[str, str], *, workers: int, name: str = "web") -> None:
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            name,
            [
                str(BIN / "uvicorn"),
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            env,
            log_dir=LOG_DIR,
        )
        wait_port(self.port, timeout=30)
        wait_until(self._healthy, timeout=60)

    def _healthy(self) -> bool:
        return healthy(self.url)


class Worker(Proc):
    """A Celery worker over `queues` with the given pool and concurrency."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        queues: list[str],
        pool: str,
        concurrency: int,
        name: str,
    ) -> None:
        self.queues = queues
        self.pool = pool
        self.concurrency = concurrency
        super().__init__(
            name,
            celery_worker_argv(
                queues=queues,
                pool=pool,
                concurrency=concurrency,
                name=name,
                loglevel=env.get("BENCH_WORKER_LOGLEVEL", "WARNING"),
                fair=True,
            ),
            env,
            log_dir=LOG_DIR,
        )
        # At WARNING the worker prints nothing when ready: wait for its broker connection.
        time.sleep(0.5)
        if not self.alive():
            raise RuntimeError(f"{name} exited; see {self.log_path}")

    def restart(self) -> Worker:
        return Worker(
            self.env,
            queues=self.queues,
            pool=self.pool,
            concurrency=self.concurrency,
            name=self.name,
        )


class Beat(Proc):
    def __init__(self, env: dict[str, str]) -> None:
        schedule = LOG_DIR / f"beat-schedule-{os.getpid()}"
        super().__init__(
            "beat",
            celery_beat_argv(schedule=str(schedule), loglevel="WARNING"),
            env,
            log_dir=LOG_DIR,
        )


class RssSampler:
    """RSS of each process group (web, workers) sampled every 0.25 s in a thread: the peak of
    the group's sum, the largest single process, and the last sample taken while the group
    was alive (call `sample()` and copy `last` just before stopping a group to record its end:
    the thread goes on sampling while its processes stop one by one)."""

    def __init__(self) -> None:
        self.groups: dict[str, list[Any]] = {}
        self.peaks: dict[str, int] = {}
        self.peak_single: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def watch(self, label: str, proc: Any) -> None:
        self.groups.setdefault(label, []).append(proc)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        with self._lock:
            for label, procs in list(self.groups.items()):
                sizes = [s for p in list(procs) if p.alive() for s in p.rss().values()]
                if not sizes:
                    continue
                self.peaks[label] = max(self.peaks.get(label, 0), sum(sizes))
                self.peak_single[label] = max(self.peak_single.get(label, 0), max(sizes))
                self.last[label] = sum(sizes)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(0.25)
