"""The processes Django does not check (uvicorn, a WSGI server, Celery worker and beat) refuse to
start with production settings and a published secret key; with a proper key the web serves,
redirects plain HTTP to HTTPS, and still answers the plain-HTTP probes."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator

import pytest
import requests

from tests.support.asgi import AsgiServer
from tests.support.processes import BIN, ROOT, free_port
from tests.support.processes import test_database_url as database_url

COMPOSE_DEFAULT = "change-me"


@pytest.fixture
def prod_env(transactional_db: None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.prod",
            "PUBLIC_BASE_URL": "https://notify.example.com",
            "DATABASE_URL": database_url(),
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run until it exits; one still running after 60 s did not refuse."""
    return subprocess.run(  # noqa: S603
        command,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "uvicorn"), "config.asgi:application", "--port", "{port}"],
        [str(BIN / "python"), "-c", "import config.wsgi"],
        [str(BIN / "celery"), "-A", "config", "worker", "-P", "solo", "-Q", "refused-{port}"],
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "beat",
            "-S",
            "django_celery_beat.schedulers:DatabaseScheduler",
        ],
    ],
    ids=["uvicorn", "wsgi", "celery-worker", "celery-beat"],
)
def test_process_refuses_to_start_with_a_published_secret_key(
    command: list[str], prod_env: dict[str, str]
) -> None:
    prod_env["DJANGO_SECRET_KEY"] = COMPOSE_DEFAULT
    port = str(free_port())

    result = _run([part.replace("{port}", port) for part in command], prod_env)

    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "refusing to start" in output
    assert "notifier.E001" in output


@pytest.fixture
def prod_web(prod_env: dict[str, str]) -> Iterator[AsgiServer]:
    server = AsgiServer(
        name="prod",
        env={
            "DJANGO_SETTINGS_MODULE": "config.settings.prod",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            "PUBLIC_BASE_URL": "https://notify.example.com",
        },
    )
    yield server
    server.stop()


def test_plain_http_is_redirected_but_probes_and_metrics_answer(prod_web: AsgiServer) -> None:
    redirected = requests.get(
        f"{prod_web.url}/api/v1/notifications", allow_redirects=False, timeout=10
    )
    assert redirected.status_code == 301
    assert (
        redirected.headers["Location"] == f"https://127.0.0.1:{prod_web.port}/api/v1/notifications"
    )
    for probe in ("healthz", "readyz", "metrics"):
        response = requests.get(f"{prod_web.url}/{probe}", allow_redirects=False, timeout=10)
        assert response.status_code == 200, (probe, response.text)


def test_behind_a_tls_proxy_requests_are_served_with_hsts(prod_web: AsgiServer) -> None:
    response = requests.get(
        f"{prod_web.url}/api/v1/notifications",
        headers={"X-Forwarded-Proto": "https"},
        allow_redirects=False,
        timeout=10,
    )

    assert response.status_code == 401  # through to the API, which wants a key
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def _procfile_web() -> str:
    (line,) = [s for s in (ROOT / "Procfile").read_text().splitlines() if s.startswith("web:")]
    return line.removeprefix("web:").strip()


def test_the_procfile_web_with_several_workers_exits_on_a_published_key(
    prod_env: dict[str, str],
) -> None:
    """uvicorn's supervisor restarts a worker that fails to load, forever: the check must
    run before it starts."""
    prod_env.update(
        {"DJANGO_SECRET_KEY": COMPOSE_DEFAULT, "PORT": str(free_port()), "WEB_CONCURRENCY": "2"}
    )
    prod_env["PATH"] = f"{BIN}{os.pathsep}{prod_env.get('PATH', '')}"

    result = _run(["sh", "-c", _procfile_web()], prod_env)

    assert result.returncode != 0
    assert "notifier.E001" in result.stderr
