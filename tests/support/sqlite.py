"""`make run`'s database is SQLite: the project's own manage.py, or pytest on a test module, in a
subprocess against a fresh SQLite file, for the code paths that differ from PostgreSQL's."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def sqlite_manage(tmp_path: Path) -> Callable[..., str]:
    """A `manage(*args) -> stdout` running manage.py with the dev settings on a SQLite file
    in `tmp_path` (asserting it exits 0)."""
    env = _sqlite_env(tmp_path, DJANGO_SETTINGS_MODULE="config.settings.dev")

    def manage(*args: str) -> str:
        return _python([str(ROOT / "manage.py"), *args], env)

    return manage


def sqlite_pytest(tmp_path: Path, *args: str) -> str:
    """pytest's output for `args` (test modules), run with the test settings on a SQLite file
    in `tmp_path` (asserting it exits 0: everything it collected passed or was skipped)."""
    return _python(["-m", "pytest", "-q", "-p", "no:cacheprovider", *args], _sqlite_env(tmp_path))


def _sqlite_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", **extra}


def _python(args: list[str], env: dict[str, str]) -> str:
    """The stdout of this interpreter run on `args` from the project's root (asserting it exits
    0; else the end of what it wrote)."""
    done = subprocess.run(  # noqa: S603 -- this interpreter on our own files, fixed arguments
        [sys.executable, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout
