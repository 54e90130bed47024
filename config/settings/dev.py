"""Local development (`make run`): SQLite and an embedded Redis unless the environment
says otherwise."""

from __future__ import annotations

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
ALLOWED_HOSTS = ["*"]
