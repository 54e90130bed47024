"""Logging, read from the environment (LOG_LEVEL, ACCESS_LOG_LEVEL). Star-imported by
base.py."""

from __future__ import annotations

import environ

env = environ.Env()

LOG_LEVEL = env("LOG_LEVEL", default="INFO")
# One JSON object per line; every record gets the bound delivery context and is masked
# (emails, phone numbers) on the root handler, whoever logged it.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "context": {"()": "notifier.logcontext.ContextFilter"},
        "mask": {"()": "notifier.logcontext.MaskingFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "filters": ["context", "mask"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django's and uvicorn's own handlers would print unmasked plain text: route every
        # one of their records to the root handler instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "uvicorn": {"handlers": [], "level": "INFO", "propagate": True},
        "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
        # Access lines are off unless asked for (ACCESS_LOG_LEVEL=INFO), and masked then too.
        "uvicorn.access": {
            "handlers": [],
            "level": env("ACCESS_LOG_LEVEL", default="WARNING"),
            "propagate": True,
        },
        # The Twilio SDK logs every request and response header at INFO.
        "twilio.http_client": {"level": "WARNING"},
    },
}
