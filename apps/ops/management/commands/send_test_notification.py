from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.broker import broker_client, redis_url_shown
from apps.core.errors import ServiceError
from apps.ops.operations import TEST_TEMPLATE_KEY, notification_probe_send
from notifier.types import Channel


class Command(BaseCommand):
    help = (
        "Send a test notification through the real pipeline (API service, queue, worker, "
        "provider) to one recipient on one channel, and print the notification and delivery "
        f"ids. Uses the built-in '{TEST_TEMPLATE_KEY}' template of the recipient's client, "
        "created on first use. Follow it with GET /api/v1/notifications/<id>, or --wait."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("recipient", help="the recipient's external id (e.g. user-42)")
        parser.add_argument("channel", choices=[c.value for c in Channel], help="the channel")
        parser.add_argument(
            "--client",
            help="the client that owns the recipient (needed when several clients have it)",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0.0,
            metavar="SECONDS",
            help="wait up to this long for a final status and print it",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Without the broker the notification would sit queued until the reconciler (which
        # needs it too): say so and send nothing.
        try:
            broker_client(fail_fast=True).ping()
        except redis.RedisError as exc:
            raise CommandError(
                "cannot reach Redis (the broker) at "
                f"{redis_url_shown(settings.CELERY_BROKER_URL)}: {exc} (nothing was sent)"
            ) from exc
        try:
            sent = notification_probe_send(
                recipient=options["recipient"],
                channel=options["channel"],
                client_name=options["client"],
                wait_seconds=options["wait"],
            )
        except ServiceError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"notification {sent.notification_id} delivery {sent.delivery_id}: {sent.status}"
            + (f" ({sent.reason})" if sent.reason else "")
        )
