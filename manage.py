#!/usr/bin/env python
"""Django's command-line utility."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.dev")
    from django.core.management import execute_from_command_line
    from kombu.exceptions import OperationalError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    try:
        execute_from_command_line(sys.argv)
    except (RedisConnectionError, RedisTimeoutError, OperationalError) as exc:
        # One line, not a page of redis-py and kombu frames: which Redis, and why.
        sys.exit(f"{_command()}: cannot reach Redis at {_redis_url()}: {exc}{_hint()}")


def _command() -> str:
    return " ".join(["manage.py", *sys.argv[1:2]])


def _redis_url() -> str:
    from django.conf import settings

    from apps.core.broker import redis_url_shown

    return redis_url_shown(str(settings.REDIS_URL))


def _hint() -> str:
    if os.environ["DJANGO_SETTINGS_MODULE"] != "config.settings.dev":
        return ""
    return " (is `make run` running? It writes var/run.env for commands in other terminals)"


if __name__ == "__main__":
    main()
