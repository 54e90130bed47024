"""A second database session beside Django's, as another process would hold (a migration)."""

from __future__ import annotations

import psycopg
from django.db import connection


def other_session() -> psycopg.Connection:
    """An autocommit psycopg connection to the database Django's tests use."""
    s = connection.settings_dict
    return psycopg.connect(
        dbname=s["NAME"],
        user=s["USER"],
        password=s["PASSWORD"] or None,
        host=s["HOST"] or None,
        port=s["PORT"] or None,
        autocommit=True,
    )
