"""Production settings refuse a missing, short or published secret key, and pass Django's own
deployment checklist (`check --deploy`) once given a proper one."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import ROOT

GOOD_KEY = secrets.token_urlsafe(64)
DEPLOY_CHECK = ("check", "--deploy", "--fail-level", "WARNING")


def _manage(*args: str, secret_key: str | None, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.prod",
            "PUBLIC_BASE_URL": "https://notify.example.com",
            **extra,
        }
    )
    env.pop("DJANGO_ALLOWED_HOSTS", None)
    if secret_key is not None:
        env["DJANGO_SECRET_KEY"] = secret_key
    return subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("secret_key", "problem"),
    [
        (None, "is not set"),
        ("", "is not set"),
        ("change-me", "is a published default"),
        ("dev-insecure-change-me", "is a published default"),
        ("django-insecure-" + secrets.token_urlsafe(50), "starts with 'django-insecure-'"),
        (secrets.token_urlsafe(30), "is shorter than 50 characters"),
        ("abcd" * 20, "has fewer than 5 different characters"),
    ],
    ids=["unset", "empty", "compose-default", "dev-default", "django-insecure", "short", "dull"],
)
def test_check_errors_on_a_missing_short_or_published_secret_key(
    secret_key: str | None, problem: str
) -> None:
    result = _manage("check", secret_key=secret_key)

    assert result.returncode != 0
    assert f"notifier.E001) SECRET_KEY (DJANGO_SECRET_KEY) {problem}" in result.stderr


def test_a_weak_fallback_key_is_an_error_too() -> None:
    result = _manage("check", secret_key=GOOD_KEY, DJANGO_SECRET_KEY_FALLBACKS="change-me")

    assert result.returncode != 0
    assert "SECRET_KEY_FALLBACKS[0] is a published default." in result.stderr


def test_migrate_refuses_to_run_with_the_compose_default_key() -> None:
    result = _manage("migrate", "--check", secret_key="change-me")

    assert result.returncode != 0
    assert "notifier.E001" in result.stderr


@pytest.fixture(scope="module")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A STATIC_ROOT as a release has it: `collectstatic` run (the Dockerfile's build step)."""
    static_root = str(tmp_path_factory.mktemp("staticfiles"))
    result = _manage(
        "collectstatic", "--noinput", "-v", "0", secret_key="build", DJANGO_STATIC_ROOT=static_root
    )
    assert result.returncode == 0, result.stderr
    return static_root


def test_check_errors_when_collectstatic_has_not_run(tmp_path: Path) -> None:
    """Without the manifest every admin and API docs page is a 500: the web's `check` (the
    Procfile runs it first) stops instead, saying what to run."""
    empty = tmp_path / "staticfiles"

    result = _manage("check", secret_key=GOOD_KEY, DJANGO_STATIC_ROOT=str(empty))

    assert result.returncode != 0
    assert (
        f"(notifier.E003) The static files manifest {empty}/staticfiles.json is missing"
        in result.stderr
    )
    assert "python manage.py collectstatic --noinput" in result.stderr


def test_deploy_checklist_passes_with_a_generated_key(collected_static: str) -> None:
    result = _manage(
        *DEPLOY_CHECK,
        secret_key=GOOD_KEY,
        DJANGO_STATIC_ROOT=collected_static,
    )

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def test_deploy_checklist_warns_when_https_is_switched_off() -> None:
    """The HTTPS settings are read from the environment (for a TLS-terminating proxy)."""
    result = _manage(
        *DEPLOY_CHECK,
        secret_key=GOOD_KEY,
        SECURE_SSL_REDIRECT="false",
        SECURE_HSTS_SECONDS="0",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
    )

    assert result.returncode != 0
    for check_id in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check_id in result.stderr


def test_compose_requires_the_secret_key_and_runs_production_settings() -> None:
    compose = (ROOT / "docker" / "compose.yaml").read_text()
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()

    (line,) = [
        s.strip() for s in compose.splitlines() if s.strip().startswith("DJANGO_SECRET_KEY:")
    ]
    # `${VAR:?message}`: compose stops with the message when the variable is unset or empty.
    assert line.startswith("DJANGO_SECRET_KEY: ${DJANGO_SECRET_KEY:?")
    assert ":-" not in line
    assert "DJANGO_SETTINGS_MODULE=config.settings.prod" in dockerfile


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "is not set"),
        ("http://notify.example.com", "'http://notify.example.com' is not https://"),
        ("https://127.0.0.1:8000", "'https://127.0.0.1:8000' is a loopback address"),
        ("https://[::1]", "'https://[::1]' is a loopback address"),
        ("https://localhost", "'https://localhost' is a loopback address"),
        ("https://notify.example.com/?a=1", "'https://notify.example.com/?a=1' has a query"),
        ("https://notify.example.com#top", "'https://notify.example.com#top' has a query"),
        ("https:///notify", "'https:///notify' names no host"),
    ],
    ids=[
        "unset",
        "http",
        "loopback-v4",
        "loopback-v6",
        "localhost",
        "query",
        "fragment",
        "no-host",
    ],
)
def test_check_errors_on_a_public_base_url_recipients_cannot_use(url: str, problem: str) -> None:
    result = _manage("check", secret_key=GOOD_KEY, PUBLIC_BASE_URL=url)

    assert result.returncode != 0
    assert f"(notifier.E004) PUBLIC_BASE_URL {problem}" in result.stderr


def test_an_https_public_base_url_passes_the_check() -> None:
    result = _manage("check", "--tag", "security", secret_key=GOOD_KEY)

    assert result.returncode == 0, result.stderr
    assert "notifier.E004" not in result.stderr
