from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"

    def ready(self) -> None:
        from django.conf import settings

        from apps.core import (
            observability,  # noqa: F401 - connects the Celery signals
            production,  # noqa: F401 - registers the production settings checks
            schema,  # noqa: F401
        )
        from apps.core.sentry import sentry_init
        from notifier.logcontext import mask_every_handler

        # Handlers a server set up before Django's LOGGING (gunicorn's, a uvicorn --log-config)
        # write unmasked unless they get the filters too.
        mask_every_handler()
        sentry_init(settings.SENTRY_DSN, environment=settings.SENTRY_ENVIRONMENT)
