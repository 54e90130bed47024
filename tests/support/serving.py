"""Helpers for the serving tests (tests/config/test_serving_*.py): the environment the served
processes get, a POST of the API, a table lock that holds a POST in flight, the Procfile's lines."""

from __future__ import annotations

import os
import threading
from typing import Any

import psycopg
import requests
from django.conf import settings

from apps.deliveries.models import Notification
from tests.support.processes import BIN, ROOT
from tests.support.processes import test_database_url as database_url

API = "/api/v1/notifications"
NOTIFICATIONS_TABLE = Notification._meta.db_table


def env(**extra: str) -> dict[str, str]:
    full = dict(os.environ)
    full.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "PYTHONUNBUFFERED": "1",
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    full.update(extra)
    return full


def post(url: str, sender: dict[str, Any], order: str, **headers: str) -> requests.Response:
    return requests.post(
        url + API,
        json={"recipient": "user-1", "template": "order_shipped", "variables": {"order_id": order}},
        headers={"Authorization": f"Bearer {sender['key']}", **headers},
        timeout=30,
    )


class TableLock:
    """ACCESS EXCLUSIVE on the notifications table from a connection of our own: a POST
    blocks on it, in flight, until `release()`."""

    def __init__(self) -> None:
        self.conn = psycopg.connect(database_url())
        self.conn.execute(f"LOCK TABLE {NOTIFICATIONS_TABLE} IN ACCESS EXCLUSIVE MODE")

    def waiting(self) -> int:
        with psycopg.connect(database_url(), autocommit=True) as other:
            row = other.execute(
                "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                [NOTIFICATIONS_TABLE],
            ).fetchone()
        return int(row[0]) if row else 0

    def release(self) -> None:
        self.conn.rollback()
        self.conn.close()


def in_background(fn: Any, *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(response=fn(*args)))
    thread.start()
    return thread, out


def procfile_line(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.removeprefix(f"{name}:").strip()
    raise AssertionError(f"no {name} in the Procfile")
