"""Local development (`make run`): SQLite and an embedded Redis unless the environment
says otherwise."""

from __future__ import annotations

from apps.core.secret_key import secret_key_file

from .base import *  # noqa: F403
from .base import BASE_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = ["*"]
# A random key made once per checkout (scripts/run_dev.py passes the same one to every process
# it starts): a key printed in a settings file would let anyone forge this instance's tokens.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or secret_key_file(
    BASE_DIR / "var" / "secret_key"
)
