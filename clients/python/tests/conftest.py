"""The service these tests call: this repository's, started as `make run` starts it
(scripts/run_dev.py: web, Celery worker and beat, the provider simulators), against a fresh
PostgreSQL database next to DATABASE_URL's and the Redis of REDIS_URL. So they run in the
repository's virtualenv (`make test` does that), with the client installed in it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from notifier_client import NotifierClient, RetryPolicy

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:  # appended: `tests` stays this directory, not the service's tests
    sys.path.append(str(ROOT))

from harness.processes import Proc, wait_until  # noqa: E402 - the repository's process harness

BANNER_END = "Ctrl-C stops everything."
# The same defaults as the service's own tests (config/settings/test.py).
DATABASE_URL = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Retries that do not slow a failing test down much.
QUICK_RETRY = RetryPolicy(max_attempts=3, backoff_base=0.2, backoff_cap=1.0)


@dataclass(frozen=True)
class Service:
    url: str
    api_key: str
    ops_key: str
    sendgrid_url: str


def fresh_database() -> str:
    """DATABASE_URL's server, a database of these tests' own, dropped and created anew."""
    import psycopg

    parts = urlsplit(DATABASE_URL)
    name = f"{parts.path.lstrip('/') or 'notifier'}_pyclient"
    admin = urlunsplit(parts._replace(scheme="postgresql", path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path=f"/{name}"))


# What the environment may carry for another run (a developer's shell, CI) that would point
# this service at other providers, brokers or hosts: `make run` chooses its own.
INHERITED = ("DJANGO_", "CELERY_", "SENDGRID_", "TWILIO_", "FCM_", "SMTP_", "NOTIFIER_", "SENTRY_")
INHERITED_NAMES = frozenset({"PORT", "PUBLIC_BASE_URL", "DATABASE_URL", "REDIS_URL"})


def tail(run: Proc, size: int = 4000) -> str:
    return f"--- make run, last {size} characters of its log ---\n{run.log()[-size:]}"


def wait_up(run: Proc) -> str:
    """The log once `make run`'s banner is out (the web answered); its tail in the failure."""

    def up() -> bool:
        if not run.alive():
            raise RuntimeError(f"make run stopped:\n{tail(run)}")
        return BANNER_END in run.log()

    try:
        wait_until(up, timeout=180, interval=0.5)
    except TimeoutError as exc:
        raise TimeoutError(f"make run was not up within 180 s:\n{tail(run)}") from exc
    return run.log()


def banner(log: str) -> dict[str, str]:
    """The banner's lines by label: `  <label>  <value>` (two spaces or more between)."""
    lines = log.split("Notifier is up.")[-1].split(BANNER_END)[0].splitlines()
    shown = (re.fullmatch(r"  (\S.*?) {2,}(\S.*)", line) for line in lines)
    return {match[1]: match[2] for match in shown if match}


def run_env(var: Path) -> dict[str, str]:
    """`make run`'s var/run.env: `KEY="value"` lines, as scripts/run_dev.py quotes them."""
    values = {}
    for line in (var / "run.env").read_text().splitlines():
        key, sep, value = line.partition("=")
        if not sep or line.startswith("#"):
            continue
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        values[key] = value
    return values


@pytest.fixture(scope="session")
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # no queued work of an earlier run
    var = tmp_path_factory.mktemp("make-run")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(INHERITED) and k not in INHERITED_NAMES and not k.endswith("_SIM_PORT")
    }
    env.update(
        DATABASE_URL=fresh_database(),
        REDIS_URL=REDIS_URL,
        NOTIFIER_VAR_DIR=str(var),
        # Ports the kernel picks: never a developer's own `make run` on 8000.
        PORT="0",
        SENDGRID_SIM_PORT="0",
        TWILIO_SIM_PORT="0",
        FCM_SIM_PORT="0",
    )
    run = Proc("make-run", [sys.executable, "-m", "scripts.run_dev"], env, log_dir=var)
    try:
        shown = banner(wait_up(run))
        chosen = run_env(var)  # written before the banner, removed when make run stops
        ops = subprocess.run(  # noqa: S603 - the repository's manage.py
            [sys.executable, str(ROOT / "manage.py"), "create_api_key", "pyclient-ops", "--ops"],
            cwd=ROOT,
            env={**env, "DJANGO_SETTINGS_MODULE": "config.settings.dev"},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        yield Service(
            url=f"http://127.0.0.1:{chosen['PORT']}",
            api_key=shown["API key"].split()[0],  # shown once, in the banner only
            ops_key=ops.stdout.strip(),
            sendgrid_url=chosen["SENDGRID_API_URL"],
        )
    finally:
        if request.session.testsfailed:
            print(f"\n{tail(run)}", file=sys.stderr)
        run.stop(timeout=30)


@pytest.fixture
def client(service: Service) -> Iterator[NotifierClient]:
    with NotifierClient(service.url, service.api_key, retry=QUICK_RETRY) as api:
        yield api


@pytest.fixture
def ops(service: Service) -> Iterator[NotifierClient]:
    with NotifierClient(service.url, service.ops_key, retry=QUICK_RETRY) as api:
        yield api


@pytest.fixture
def user(client: NotifierClient) -> str:
    """A new recipient of the demo client, with an email address of its own."""
    external_id = f"user-{uuid.uuid4().hex[:10]}"
    client.upsert_recipient(
        external_id, email=f"{external_id}@example.com", name="Ada", locale="en", timezone="UTC"
    )
    return external_id
