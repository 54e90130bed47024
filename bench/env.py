"""The environment every benchmark process gets, and Django for the harness itself."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import django

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = "config.settings.prod"
# Production settings refuse a published key: one random key per run, shared by every process
# the run starts (the harness mints recipient tokens the web must verify).
RUN_SECRET_KEY = secrets.token_urlsafe(64)


def require_services() -> tuple[str, str]:
    """DATABASE_URL and REDIS_URL: the benchmark uses (and flushes) that Redis database."""
    database, redis = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not database or not redis or not database.startswith("postgres"):
        sys.exit(
            "Set DATABASE_URL (PostgreSQL) and REDIS_URL. The benchmarks write to that database "
            "and FLUSHDB that Redis database: do not point them at production."
        )
    return database, redis


def process_env(**extra: str) -> dict[str, str]:
    """Production settings, persistent DB connections, quiet logs, no API rate limit."""
    database, redis = require_services()
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "DJANGO_SECRET_KEY": env.get("DJANGO_SECRET_KEY", RUN_SECRET_KEY),
            # The benchmarks talk plain HTTP to the web directly, with no TLS proxy in front.
            "SECURE_SSL_REDIRECT": "false",
            # Production refuses to start without the public address the emails' links use.
            "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", "https://notifier.bench.example"),
            "DATABASE_URL": database,
            "REDIS_URL": redis,
            "BENCH_ENDPOINTS": "1",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
            # The per-key limit (6000/min by default) would turn a load test into 429s; the
            # throttle still runs, so its cost is measured.
            "API_KEY_RATE": "10000000/min",
            # Backpressure: the benchmarks queue deep on purpose.
            "QUEUE_DEPTH_LIMIT": "10000000",
            # Provider token buckets off: the simulators answer at once, measure the pipeline.
            "SENDGRID_RATE_PER_SECOND": "0",
            "TWILIO_RATE_PER_SECOND": "0",
            "FCM_RATE_PER_SECOND": "0",
            "SMTP_RATE_PER_SECOND": "0",
            "DB_CONN_MAX_AGE": "600",
        }
    )
    env.update(extra)
    return env


def setup_django() -> None:
    """Configure Django in the harness (same settings), and migrate the database."""
    for key, value in process_env().items():
        os.environ.setdefault(key, value)
    os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS
    sys.path.insert(0, str(ROOT))
    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)
    vacuum()


def vacuum() -> None:
    """VACUUM ANALYZE the tables a run fills and empties again. Every run deletes what it
    created, and a PostgreSQL with autovacuum off (as on the machine these figures come from)
    would otherwise carry every earlier run's dead rows in its tables and indexes: a run late in
    a day measured several times the tail latency of the same code on fresh tables."""
    from django.apps import apps
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    ours = {"deliveries", "inbox", "recipients", "clients", "templates", "topics", "benchmarks"}
    tables = [
        model._meta.db_table
        for config in apps.get_app_configs()
        if config.label in ours
        for model in config.get_models()
    ]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {connection.ops.quote_name(table)}")


# The tables an API run writes (the POST's rows; the bare endpoint's one row).
WRITTEN_TABLES = (
    "deliveries_notification",
    "deliveries_delivery",
    "deliveries_deliveryevent",
    "recipients_recipient",
    "benchmarks_benchrow",
)


def analyze(tables: tuple[str, ...] = WRITTEN_TABLES) -> None:
    """ANALYZE the tables an API run writes, as autovacuum would while they grow. With
    autovacuum off (this machine) the statistics stay those of the `vacuum` at the start, taken
    on nearly empty tables, and the API's foreign-key checks are planned as sequential scans
    that grow with every row written: run after run measured slower (202, 150, 131 requests/s)
    while the bare endpoint held."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(table)}")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def uptime() -> str:
    try:
        return subprocess.run(  # noqa: S603 - procps's uptime, by absolute path when found
            [shutil.which("uptime") or "/usr/bin/uptime"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        return f"load average: {load_average()}"


def stamp() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
