"""Tests: real PostgreSQL and Redis (the local services unless DATABASE_URL / REDIS_URL say)."""

from __future__ import annotations

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")

from .base import *  # noqa: F403
from .base import DATABASES, INSTALLED_APPS

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests open and close many connections from threads and worker processes.
DATABASES["default"]["CONN_MAX_AGE"] = 0
DATABASES["default"].get("OPTIONS", {}).pop("pool", None)

# The bench app's tests run in the one test database of the whole suite (pytest-django
# migrates it once per session), so it is installed here too; its URLs stay off unless
# BENCH_ENDPOINTS, as everywhere, and its tests route them themselves.
if "apps.benchmarks" not in INSTALLED_APPS:
    INSTALLED_APPS = [*INSTALLED_APPS, "apps.benchmarks"]

# Test receivers listen on 127.0.0.1 over plain http.
WEBHOOKS_ALLOW_PRIVATE = True
