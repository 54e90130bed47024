"""var/run.env and `make run`'s own processes: they use the database and Redis `make run` gave
them, never what another run's var/run.env says; what it writes there reads back exactly; a
step that fails before anything starts is one line naming it."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import pytest

from scripts import run_dev
from tests.support.processes import ROOT, run_to_exit

UNSET = ("DATABASE_URL", "REDIS_URL", "PORT", "DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY")
PRINT_SETTINGS = (
    "from django.conf import settings; import os; "
    "print(settings.DATABASES['default']['NAME']); print(settings.REDIS_URL); "
    "print(os.environ.get('TWILIO_AUTH_TOKEN', '-'))"
)


def user_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in UNSET and not k.endswith("_SIM_PORT")}
    env.pop("TWILIO_AUTH_TOKEN", None)
    return {**env, "NOTIFIER_VAR_DIR": str(var_dir), **extra}


def manage_prints_settings(env: dict[str, str]) -> list[str]:
    done = run_to_exit(
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", PRINT_SETTINGS], env
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-3:]  # after Django's "N objects imported" note


def another_runs_file(var_dir: Path, elsewhere: Path) -> None:
    """A var/run.env written by another `make run` that is still running (this test's PID)."""
    var_dir.mkdir(parents=True, exist_ok=True)
    (var_dir / "run.env").write_text(
        f"NOTIFIER_RUN_PID={os.getpid()}\n"
        f"DATABASE_URL=sqlite:///{elsewhere}\n"
        "REDIS_URL=redis://127.0.0.1:6399/7\n"
    )


def test_make_runs_own_migrate_and_seed_ignore_another_runs_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    var_dir, elsewhere = tmp_path / "var", tmp_path / "other-run.sqlite3"
    monkeypatch.setattr(run_dev, "VAR", var_dir)  # as NOTIFIER_VAR_DIR sets it at import
    another_runs_file(var_dir, elsewhere)
    env = user_env(var_dir, REDIS_URL=os.environ["REDIS_URL"])

    # What `make run` runs before anything else, with the environment it gives its processes.
    seeded = run_to_exit(
        [
            sys.executable,
            "-c",
            "import json, os; from scripts.run_dev import launch_env, seed; "
            "print(json.dumps(seed(launch_env(dict(os.environ)))))",
        ],
        env,
        timeout=120,
    )
    children = run_dev.launch_env(user_env(var_dir))

    assert seeded.returncode == 0, seeded.stderr
    assert (var_dir / "db.sqlite3").exists()  # migrated and seeded where make run said
    assert not elsewhere.exists()  # not in the other run's database
    assert manage_prints_settings(children)[:2] == [
        str(var_dir / "db.sqlite3"),
        "redis://127.0.0.1:6379/0",  # the settings' default, not the other run's Redis
    ]


def test_a_second_terminal_reads_the_run_env_and_a_quote_survives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is read by django-environ (config/settings/dev.py), not by a shell."""
    token = """it's a "token" with \\ and \\n and $HOME"""
    monkeypatch.setattr(run_dev, "RUN_ENV_FILE", tmp_path / "run.env")
    database = tmp_path / "it's here.sqlite3"
    run_dev.write_run_env(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "REDIS_URL": "redis://127.0.0.1:6399/3",
            "TWILIO_AUTH_TOKEN": token,
        }
    )

    shown = manage_prints_settings(user_env(tmp_path))

    assert shown == [str(database), "redis://127.0.0.1:6399/3", token]


def test_a_value_with_a_line_break_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(run_dev, "RUN_ENV_FILE", tmp_path / "run.env")

    with pytest.raises(run_dev.LaunchError, match="TWILIO_FROM contains a line break"):
        run_dev.write_run_env({"TWILIO_FROM": "+1555\nREDIS_URL=redis://evil/0"})
    assert not (tmp_path / "run.env").exists()


@pytest.mark.parametrize("content", [None, b"NOTIFIER_RUN_PID=\xff\xfe\n", b"NOTIFIER_RUN_PID=0\n"])
def test_a_run_env_that_cannot_be_read_is_not_live(tmp_path: Path, content: bytes | None) -> None:
    run_env = tmp_path / "run.env"
    if content is None:
        run_env.mkdir()  # reading it: IsADirectoryError
    else:
        run_env.write_bytes(content + b"REDIS_URL=redis://127.0.0.1:6399/5\n")

    shown = manage_prints_settings(user_env(tmp_path))

    assert shown[1] == "redis://127.0.0.1:6379/0"


def test_a_failing_migrate_is_one_line_naming_the_step(tmp_path: Path) -> None:
    env = user_env(
        tmp_path,
        DATABASE_URL="postgres://postgres@127.0.0.1:1/nowhere",
        REDIS_URL=os.environ["REDIS_URL"],
    )

    done = run_to_exit([sys.executable, "-m", "scripts.run_dev"], env, timeout=120)

    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("make run: migrate failed (rc=1): "), lines[0]
    assert "django.db.utils.OperationalError: " in lines[0], lines[0]
    assert not (tmp_path / "run.env").exists()


def test_waiting_for_the_web_is_not_a_failure_once_everything_is_stopping() -> None:
    stopping, running = threading.Event(), threading.Event()
    running.set()
    nowhere = "http://127.0.0.1:1/healthz"

    assert run_dev.wait_http(nowhere, 5, stopping) is None
    assert run_dev.wait_http(nowhere, 0.5, running) is False
    assert run_dev.announce_when_up(stopping, base="http://127.0.0.1:1", env={}, demo={}) is None
