"""Local development (`make run`): SQLite and an embedded Redis unless the environment
says otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import environ

# What a running `make run` chose (its Redis, database, simulators; scripts/run_dev.py writes
# var/run.env), so that `manage.py` in another terminal reaches the same services. Read before
# the base settings read the environment; variables set in the environment win. A file left by
# a run that is gone (killed without cleaning up), or that cannot be read, is ignored; so is
# every file in the processes `make run` starts itself (NOTIFIER_IGNORE_RUN_ENV): theirs is
# the environment it gave them, not what another run wrote.
VAR_DIR = Path(os.environ.get("NOTIFIER_VAR_DIR") or Path(__file__).parents[2] / "var")
RUN_ENV_FILE = VAR_DIR / "run.env"


def _run_env_is_live(path: Path) -> bool:
    if os.environ.get("NOTIFIER_IGNORE_RUN_ENV"):
        return False
    try:
        pid = int(_run_pid(path))
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    if pid <= 0:  # kill(0) and kill(-n) signal process groups: no run's PID
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _run_pid(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("NOTIFIER_RUN_PID="):
            return line.partition("=")[2]
    return ""


if _run_env_is_live(RUN_ENV_FILE):
    environ.Env.read_env(RUN_ENV_FILE, overwrite=False)

from apps.core.secret_key import secret_key_file  # noqa: E402

from .base import *  # noqa: E402, F403
from .base import env  # noqa: E402

DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = ["*"]
# A random key made once per checkout (scripts/run_dev.py passes the same one to every process
# it starts): a key printed in a settings file would let anyone forge this instance's tokens.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or secret_key_file(VAR_DIR / "secret_key")
# `make run`: webhook receivers on this machine (http://127.0.0.1:...) are fine.
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=True)
