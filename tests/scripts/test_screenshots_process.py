"""scripts/screenshots.py's handling of the `make run` it starts (also scripts.ab_example's):
`stop` ends the whole process group, with SIGKILL when SIGTERM is ignored, and never raises for
a group already gone; `start` stops what it started when the banner never comes or it is
interrupted while waiting; SIGTERM becomes SystemExit. A stand-in for `make run` (a Python
process with a child of its own) is started instead of scripts.run_dev: no Django here."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from scripts import screenshots

# A stand-in for `make run` that never prints the banner: it starts a child (its process group's
# second member), writes both pids to $PID_FILE, then waits; IGNORE_TERM=1 ignores SIGTERM.
STAND_IN = """
import os, signal, subprocess, sys, time
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
tmp = os.environ["PID_FILE"] + ".tmp"
with open(tmp, "w") as f:
    f.write(f"{os.getpid()} {child.pid}")
os.replace(tmp, os.environ["PID_FILE"])
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    """Running (a zombie left for a reaper that is slow, or absent, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def _pids(pid_file: Path, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while not pid_file.exists():
        assert time.monotonic() < deadline, "the stand-in did not start"
        time.sleep(0.05)
    return [int(pid) for pid in pid_file.read_text().split()]


def _gone(pids: list[int], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def stand_in(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The stand-in's environment; whatever it started is killed afterwards, whatever the test
    did."""
    env = {**os.environ, "PID_FILE": str(tmp_path / "pids")}
    yield env
    if Path(env["PID_FILE"]).exists():
        for pid in _pids(Path(env["PID_FILE"])):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _launch(env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", STAND_IN]
    return subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603 - ours


def test_stop_ends_the_process_and_its_child(stand_in: dict[str, str]) -> None:
    proc = _launch(stand_in)
    pids = _pids(Path(stand_in["PID_FILE"]))

    screenshots.stop(proc)

    assert proc.returncode == -signal.SIGTERM
    assert _gone(pids)


def test_stop_kills_a_group_that_ignores_sigterm(
    stand_in: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(screenshots, "STOP_TIMEOUT", 1.0)
    proc = _launch(stand_in | {"IGNORE_TERM": "1"})
    pids = _pids(Path(stand_in["PID_FILE"]))

    screenshots.stop(proc)

    assert proc.returncode == -signal.SIGKILL
    assert _gone(pids)


def test_stop_of_a_group_already_gone_does_not_raise(stand_in: dict[str, str]) -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait(timeout=30)

    screenshots.stop(proc)

    assert proc.returncode == 0


def test_start_stops_what_it_started_when_the_banner_never_comes(
    stand_in: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(screenshots, "RUN_DEV", [sys.executable, "-c", STAND_IN])
    monkeypatch.setattr(screenshots, "BANNER_TIMEOUT", 3.0)

    with pytest.raises(SystemExit, match="make run did not come up"):
        screenshots.start(tmp_path, {"PID_FILE": stand_in["PID_FILE"]})

    pids = _pids(Path(stand_in["PID_FILE"]))
    assert len(pids) == 2
    assert _gone(pids)


def test_start_stops_what_it_started_when_interrupted_while_waiting(
    stand_in: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = Path(stand_in["PID_FILE"])

    def interrupted(seconds: float) -> None:
        _pids(pid_file)  # once the stand-in and its child are running: Ctrl-C
        raise KeyboardInterrupt

    clock = SimpleNamespace(monotonic=time.monotonic, sleep=interrupted)
    monkeypatch.setattr(screenshots, "RUN_DEV", [sys.executable, "-c", STAND_IN])
    monkeypatch.setattr(screenshots, "time", clock)

    with pytest.raises(KeyboardInterrupt):
        screenshots.start(tmp_path, {"PID_FILE": str(pid_file)})

    assert _gone(_pids(pid_file))


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)  # the handler runs at the next bytecode: this sleep is never finished


def test_sigterm_becomes_system_exit() -> None:
    before = signal.getsignal(signal.SIGTERM)
    try:
        screenshots.exit_on_sigterm()
        with pytest.raises(SystemExit) as stopped:
            _terminate_self()
    finally:
        signal.signal(signal.SIGTERM, before)

    assert stopped.value.code == 128 + signal.SIGTERM
