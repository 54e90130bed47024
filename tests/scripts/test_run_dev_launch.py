"""Two `make run` launched at once, as a user would (SQLite, the embedded Redis, the
simulators): both come up on ports of their own, a `manage.py` command in a second terminal
reaches its run's services through var/run.env, and the admin password of a first run is
printed again by the next one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from harness.processes import Proc
from tests.support.processes import ROOT, wait_until

pytestmark = pytest.mark.pipeline
BANNER_END = "Ctrl-C stops everything."
UNSET = ("DATABASE_URL", "REDIS_URL", "PORT", "DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY")


def user_env(var_dir: Path) -> dict[str, str]:
    """A shell with nothing set (what the README's reader has), this run's var/ elsewhere."""
    env = {k: v for k, v in os.environ.items() if k not in UNSET and not k.endswith("_SIM_PORT")}
    env["NOTIFIER_VAR_DIR"] = str(var_dir)
    return env


def launch(var_dir: Path) -> Proc:
    env = user_env(var_dir)
    env["DATABASE_URL"] = f"sqlite:///{var_dir / 'db.sqlite3'}"
    var_dir.mkdir(parents=True, exist_ok=True)
    return Proc(
        "make-run",
        [sys.executable, "-m", "scripts.run_dev"],
        env,
        log_dir=var_dir,
        unique_log=True,
    )


def banner(run: Proc) -> dict[str, str]:
    def up() -> bool:
        assert run.alive(), run.log()
        return BANNER_END in run.log()

    wait_until(up, timeout=120, interval=0.5)
    lines = run.log().split("Notifier is up.")[-1].split(BANNER_END)[0].splitlines()
    return {line[2:16].strip(): line[17:].strip() for line in lines if line.startswith("  ")}


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - local URL
        return int(response.status)


def manage(var_dir: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env={**user_env(var_dir), **extra},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_two_runs_at_once_and_a_second_terminal(tmp_path: Path) -> None:
    a_dir, b_dir = tmp_path / "a", tmp_path / "b"
    runs = [launch(a_dir), launch(b_dir)]
    try:
        a, b = banner(runs[0]), banner(runs[1])

        ports = [
            re.findall(r":(\d+)", run[key])[0]
            for run in (a, b)
            for key in ("API", "SendGrid sim", "Twilio sim", "FCM sim")
        ]
        assert len(set(ports)) == 8, ports
        assert a["Redis"] != b["Redis"]
        for run in (a, b):
            api = run["API"].split()[0]
            assert get(api.replace("/api/v1/", "/healthz")) == 200
            assert get(api.replace("/api/v1/", "/static/admin/css/base.css")) == 200
        password = re.findall(r"admin / (\S+)", a["Admin"])[0]
        assert (a_dir / "admin_password").read_text().strip() == password

        # A second terminal, nothing exported: manage.py finds run A's Redis and database.
        sent = manage(a_dir, "send_test_notification", "demo-user", "email", "--wait", "30")
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip().endswith(": sent"), sent.stdout
        # What the shell sets wins over var/run.env; an unreachable Redis is one line.
        refused = manage(
            a_dir, "send_test_notification", "demo-user", "email", REDIS_URL="redis://127.0.0.1:1/0"
        )
        assert refused.returncode == 1
        assert refused.stderr.strip().splitlines() == [
            "CommandError: cannot reach Redis (the broker) at redis://127.0.0.1:1/0: Error 111 "
            "connecting to 127.0.0.1:1. Connection refused. (nothing was sent)"
        ]
    finally:
        for run in runs:
            run.stop(timeout=30)

    assert not (a_dir / "run.env").exists()  # removed when the run stopped
    # The next run, after the first one stopped (or failed) past seeding: same password.
    again = launch(a_dir)
    try:
        assert re.findall(r"admin / (\S+)", banner(again)["Admin"]) == [password]
    finally:
        again.stop(timeout=30)
