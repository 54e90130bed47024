"""What production refuses to start without: system checks that ERROR (so `manage.py check`,
`migrate` and `runserver` stop), and the same checks run by the processes that Django does not
check (uvicorn/gunicorn through config/asgi.py and config/wsgi.py, Celery workers and beat
through config/celery.py; Celery runs Django's checks but ignores what they find).

They apply where the settings ask for them (`REFUSE_UNSAFE_SETTINGS = True`, as
config/settings/prod.py does): development and test settings run with known keys on purpose.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.staticfiles.storage import ManifestFilesMixin
from django.core.checks import CheckMessage, Error, Tags, Warning, register, run_checks
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages

from apps.core.secret_key import secret_key_problem


def _setting(name: str) -> Any:
    try:
        return getattr(settings, name, None)
    except ImproperlyConfigured:  # Django refuses to hand out an empty SECRET_KEY
        return None


@register(Tags.security)
def production_settings_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """A missing, short or published secret key is an error in production, and so is DEBUG;
    a wildcard host or the benchmark endpoints are warnings."""
    if not getattr(settings, "REFUSE_UNSAFE_SETTINGS", False):
        return []
    problems: list[CheckMessage] = []
    hint = (
        "Set DJANGO_SECRET_KEY to a long random value, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(64))'`, and keep it secret: "
        "whoever knows it can forge recipient tokens and admin sessions."
    )
    problem = secret_key_problem(_setting("SECRET_KEY"))
    if problem:
        problems.append(
            Error(f"SECRET_KEY (DJANGO_SECRET_KEY) {problem}.", hint=hint, id="notifier.E001")
        )
    for index, fallback in enumerate(_setting("SECRET_KEY_FALLBACKS") or []):
        problem = secret_key_problem(fallback)
        if problem:
            problems.append(
                Error(f"SECRET_KEY_FALLBACKS[{index}] {problem}.", hint=hint, id="notifier.E001")
            )
    problem = public_base_url_problem(_setting("PUBLIC_BASE_URL") or "")
    if problem:
        problems.append(
            Error(
                f"PUBLIC_BASE_URL {problem}: the unsubscribe and preference links in emails "
                "start with it.",
                hint="Set PUBLIC_BASE_URL to the https address recipients reach the service by, "
                "e.g. https://notify.example.com (no query or fragment).",
                id="notifier.E004",
            )
        )
    if settings.DEBUG:
        problems.append(
            Error(
                "DEBUG is on: error pages would show settings, SQL and local variables.",
                id="notifier.E002",
            )
        )
    if "*" in settings.ALLOWED_HOSTS:
        problems.append(
            Warning(
                "ALLOWED_HOSTS (DJANGO_ALLOWED_HOSTS) accepts any host.",
                hint="List the service's host names.",
                id="notifier.W001",
            )
        )
    if settings.BENCH_ENDPOINTS:
        problems.append(
            Warning(
                "BENCH_ENDPOINTS is on: /bench/ accepts unauthenticated writes.",
                hint="Only `make bench` needs it.",
                id="notifier.W002",
            )
        )
    return problems


def public_base_url_problem(url: str) -> str:
    """What is wrong with PUBLIC_BASE_URL for production ('' when nothing): it must be https,
    name a host that is not loopback, and carry no query or fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return f"{url!r} is not a URL"
    if parts.scheme != "https":
        return f"{url!r} is not https://" if url else "is not set"
    if not host:
        return f"{url!r} names no host"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return f"{url!r} has a query or a fragment"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost" or host.endswith(".localhost")
    return f"{url!r} is a loopback address" if loopback else ""


# Not tagged `staticfiles`: `collectstatic` runs those checks first, and it makes the manifest.
@register(Tags.files)
def static_manifest_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """With content-hashed static names (production's storage), every page that links a static
    file (the admin, the API docs) is a 500 until `collectstatic` has written the manifest: say
    so at `manage.py check` (the Procfile's web runs it first), not on the first page view."""
    storage = storages["staticfiles"]
    if not isinstance(storage, ManifestFilesMixin) or not storage.manifest_strict:
        return []
    if storage.manifest_storage.exists(storage.manifest_name):
        return []
    manifest = storage.manifest_storage.path(storage.manifest_name)
    return [
        Error(
            f"The static files manifest {manifest} is missing: `collectstatic` has not been run "
            "into STATIC_ROOT (DJANGO_STATIC_ROOT), so the admin and /api/docs/ would answer 500.",
            hint="Run `python manage.py collectstatic --noinput` when the release is built (the "
            "Dockerfile does; on a Procfile platform, in its build step), with the same "
            "DJANGO_STATIC_ROOT as the web process.",
            id="notifier.E003",
        )
    ]


def refuse_unsafe_start() -> None:
    """Raise ImproperlyConfigured (the process must not serve) if a security check errs.
    For entry points that Django does not check: the ASGI/WSGI apps, Celery worker and beat."""
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    errors = [message for message in run_checks(tags=[Tags.security]) if message.is_serious()]
    if errors:
        raise ImproperlyConfigured(
            "refusing to start:\n" + "\n".join(f"  {message}" for message in errors)
        )
