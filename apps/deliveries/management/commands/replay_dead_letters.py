from __future__ import annotations

import datetime as dt
import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from apps.deliveries.dead_letters import BULK_REPLAY_LIMIT, dead_letters_replay
from apps.deliveries.models import DeadLetter, DeliveryStatus
from apps.deliveries.retention import parse_age
from notifier.types import Channel


def _since(text: str) -> dt.datetime:
    """An age (`2h`, `3d`) back from now, or an ISO 8601 timestamp."""
    try:
        return timezone.now() - parse_age(text)
    except ValueError:
        pass
    moment = parse_datetime(text)
    if moment is None:
        raise CommandError(f"--since {text!r}: give an age like 2h or 3d, or an ISO timestamp")
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, dt.UTC)


class Command(BaseCommand):
    help = (
        "Replay dead letters not yet replayed: each one's delivery is re-queued for a fresh "
        "series of attempts, and who replayed it and when is recorded. Without filters every "
        "waiting dead letter is replayed. Uses the same service as the admin action and "
        "POST /api/v1/dead-letters/replay."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--channel", choices=[c.value for c in Channel], help="only this channel's"
        )
        parser.add_argument(
            "--since",
            metavar="AGE_OR_TIME",
            help="only those created since: an age (30m, 2h, 3d) or an ISO 8601 timestamp",
        )
        parser.add_argument("--reason", help="only those with exactly this reason")
        parser.add_argument(
            "--dry-run", action="store_true", help="list what would be replayed, change nothing"
        )
        parser.add_argument(
            "--by",
            default=f"cli:{getpass.getuser()}",
            help="recorded as the replayer (default cli:<user>)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        waiting = DeadLetter.objects.filter(
            replayed_at__isnull=True, delivery__status=DeliveryStatus.DEAD
        )
        if options["channel"]:
            waiting = waiting.filter(channel=options["channel"])
        if options["since"]:
            waiting = waiting.filter(created_at__gte=_since(options["since"]))
        if options["reason"]:
            waiting = waiting.filter(reason=options["reason"])
        if options["dry_run"]:
            rows = list(waiting.order_by("pk").values_list("pk", "channel", "reason"))
            for pk, channel, reason in rows:
                self.stdout.write(f"{pk}\t{channel}\t{reason}")
            self.stdout.write(f"would replay {len(rows)} dead letter(s)")
            return
        total = 0
        while True:
            ids = list(waiting.order_by("pk").values_list("pk", flat=True)[:BULK_REPLAY_LIMIT])
            if not ids:
                break
            replayed = dead_letters_replay(replayed_by=options["by"], ids=ids)
            total += len(replayed)
            if not replayed:  # the rest are locked by a concurrent replay
                break
        self.stdout.write(f"replayed {total} dead letter(s)")
