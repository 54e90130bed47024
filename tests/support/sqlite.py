"""`make run`'s database is SQLite: the project's own manage.py in a subprocess against a fresh
SQLite file, for the code paths that differ from PostgreSQL's."""

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
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.dev",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
    }

    def manage(*args: str) -> str:
        done = subprocess.run(  # noqa: S603 -- our own manage.py, fixed arguments
            [sys.executable, str(ROOT / "manage.py"), *args],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    return manage
