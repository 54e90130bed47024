from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.deliveries.retention import PURGE_BATCH, history_purge, parse_age


class Command(BaseCommand):
    help = (
        "Delete delivery history older than an age: finished deliveries (sent, delivered, "
        "failed, dead, skipped, cancelled...) last updated before it, with their events, "
        "attempts and dead letters, then notifications left without deliveries. Deliveries "
        "still in flight are kept. Runs in small transactions; beat runs it hourly with "
        "RETENTION_DAYS."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            required=True,
            metavar="AGE",
            help="age such as 90d, 12h, 30m, 3600s or 2w",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=PURGE_BATCH,
            help=f"deliveries deleted per transaction (default {PURGE_BATCH})",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="only count what would be deleted"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            age = parse_age(options["older_than"])
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1")
        result = history_purge(
            older_than=age, batch_size=options["batch_size"], dry_run=options["dry_run"]
        )
        verb = "would delete" if options["dry_run"] else "deleted"
        counts = ", ".join(f"{n} {table}" for table, n in sorted(result.deleted.items()))
        self.stdout.write(f"{verb} (before {result.cutoff.isoformat()}): {counts or 'nothing'}")
