"""Processes bench/ and tests/ start (web, workers, beat, simulators) and stop again, by PID.

Every process is started in its own session, so that it and its children (uvicorn's and
Celery's pool processes) form one process group whose id is the PID we started. Stopping
signals that group only: nothing anyone else started is ever touched.
"""

from __future__ import annotations

import atexit
import contextlib
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

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LOG_DIR = ROOT / "var"
PAGE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    """A port that was free a moment ago: for unique names, and for addresses where nothing is
    meant to listen. A server is given `listening_socket()` instead: a port chosen here, freed
    and bound again by another process can be taken in between (a test run or `make run`
    starting at the same time)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def listening_socket(port: int = 0, *, fallback: bool = False) -> socket.socket:
    """A TCP socket on 127.0.0.1 bound to `port` (0: one the kernel picks) and listening, for a
    server process to inherit (uvicorn's `--fd`): the port is never free between being chosen
    and being served. With `fallback`, a taken `port` gives way to one the kernel picks.

    Bound and listening in one step: SO_REUSEADDR lets two sockets bind the same port until one
    of them listens, so a failed `listen()` is a taken port too."""
    if not 0 <= port <= 65535:  # else bind() raises OverflowError, not OSError
        raise ValueError(f"port {port} is not between 0 and 65535")
    candidates = (port, 0) if fallback and port else (port,)
    for candidate in candidates:
        sock = socket.socket()
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", candidate))
            sock.listen(2048)
        except BaseException as exc:
            sock.close()  # whatever failed, the descriptor is not left open
            if not isinstance(exc, OSError) or candidate == candidates[-1]:
                raise
            continue
        return sock
    raise AssertionError("unreachable")  # the last candidate returns or raises


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


def group_pids(pgid: int) -> list[int]:
    """PIDs whose process group is `pgid` (a process we started and its children)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[2]) == pgid:
            pids.append(int(entry))
    return pids


def rss_bytes(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0


class Proc:
    """One started process (and its process group), its output in `log_dir`: one log per
    name and process (appended to), or with `unique_log` one per start."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        *,
        ready: str | None = None,
        log_dir: Path = LOG_DIR,
        unique_log: bool = False,
        listening: socket.socket | None = None,
    ) -> None:
        """`listening`: a socket the process inherits (its descriptor number in its argv);
        closed here once the process has it."""
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.argv = argv
        self.env = env
        suffix = f"-{free_port()}" if unique_log else ""
        self.log_path = log_dir / f"{name}-{os.getpid()}{suffix}.log"
        self._log = self.log_path.open("ab")
        self._log.write(f"\n--- start {time.strftime('%H:%M:%S')} {' '.join(argv)}\n".encode())
        self._log.flush()
        self.popen = subprocess.Popen(  # noqa: S603 - our own commands
            argv,
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            pass_fds=() if listening is None else (listening.fileno(),),
        )
        if listening is not None:
            listening.close()
        self.pid = self.popen.pid
        self.proc = self.popen  # the name tests/ know it by
        self._log_offset = self.log_path.stat().st_size
        REGISTRY.append(self)
        if ready is not None:
            try:
                wait_until(lambda: ready.encode() in self._new_log(), timeout=60)
            except TimeoutError:
                self.stop()
                raise RuntimeError(f"{name} did not start; see {self.log_path}") from None

    def _new_log(self) -> bytes:
        if self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited; see {self.log_path}")
        with self.log_path.open("rb") as f:
            f.seek(max(0, self._log_offset - 200))
            return f.read()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_started(self, ready: Any, what: str, timeout: float = 30) -> None:
        """Wait until `ready()`; stop the process and fail with its log if it never is."""
        try:
            wait_until(ready, timeout=timeout, interval=0.1)
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"{what} did not start:\n{self.log()}") from None

    def alive(self) -> bool:
        return self.popen.poll() is None

    def rss(self) -> dict[int, int]:
        """RSS in bytes of every process in the group, by PID."""
        return {pid: rss_bytes(pid) for pid in group_pids(self.pid)}

    def kill(self) -> None:
        """SIGKILL the whole group at once (a crash, for the chaos run)."""
        self._signal(signal.SIGKILL)
        self.popen.wait(timeout=10)

    def stop(self, timeout: float = 20.0) -> None:
        if self.popen.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.popen.wait(timeout=10)
        # Children left behind by a killed parent are still in the group.
        for pid in group_pids(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if not self._log.closed:
            self._log.close()
        if self in REGISTRY:
            REGISTRY.remove(self)

    def _signal(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, sig)


REGISTRY: list[Proc] = []


def stop_all() -> None:
    for proc in reversed(list(REGISTRY)):
        proc.stop(timeout=10)


def _on_signal(signum: int, _frame: Any) -> None:
    stop_all()
    sys.exit(128 + signum)


atexit.register(stop_all)


def install_signal_handlers() -> None:
    """For the command line: a SIGTERM or Ctrl-C stops what was started before exiting."""
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


class Simulator(Proc):
    """A provider simulator (simulators/) in its own process, with its control API."""

    def __init__(
        self, provider: str, env: dict[str, str] | None = None, *, log_dir: Path = LOG_DIR
    ) -> None:
        self.provider = provider
        listening = listening_socket()
        self.port = int(listening.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        super().__init__(
            f"sim-{provider}",
            [str(BIN / "python"), "-m", "simulators", provider, "--fd", str(listening.fileno())],
            {**os.environ, **(env or {})},
            log_dir=log_dir,
            listening=listening,
        )
        self.wait_started(self._answers, f"simulator {provider}")

    def _answers(self) -> bool:
        if not self.alive():
            raise RuntimeError(f"simulator {self.provider} exited:\n{self.log()}")
        try:
            self.stats()
        except OSError:
            return False
        return True

    def call(self, method: str, path: str, body: Any = None, timeout: float = 60) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - local simulator
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return json.loads(response.read() or b"null")

    def reset(self) -> None:
        self.call("POST", "/_sim/reset")

    def fault(self, **fault: Any) -> None:
        self.call("POST", "/_sim/faults", fault)

    def clear_faults(self) -> None:
        self.call("DELETE", "/_sim/faults")

    def requests(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/_sim/requests"))

    def accepted(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if 200 <= r["status"] < 300]

    def stats(self) -> dict[str, Any]:
        return dict(self.call("GET", "/_sim/stats"))


def celery_worker_argv(
    *, queues: list[str], pool: str, concurrency: int, name: str, loglevel: str, fair: bool
) -> list[str]:
    """`celery worker` over `queues`, without the cluster chatter (gossip, mingle, heartbeat)."""
    return [
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
        *(["-O", "fair"] if fair else []),
        "-n",
        f"{name}-{free_port()}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "--loglevel",
        loglevel,
    ]


def celery_beat_argv(*, schedule: str, loglevel: str) -> list[str]:
    """`celery beat` with the project's schedule, its state file at `schedule`."""
    return [
        str(BIN / "celery"),
        "-A",
        "config",
        "beat",
        "--scheduler",
        "celery.beat:PersistentScheduler",
        "-s",
        schedule,
        "--loglevel",
        loglevel,
    ]
