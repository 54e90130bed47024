from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.clients.services import api_key_create


class Command(BaseCommand):
    help = (
        "Create an API key for a client (created if new) and print it once; only its hash is "
        "stored. --ops keys see every client's data and may replay dead letters."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="client name, e.g. 'billing-service'")
        parser.add_argument("--ops", action="store_true", help="an operator key (sees all clients)")

    def handle(self, *args: Any, **options: Any) -> None:
        key, raw = api_key_create(client_name=options["name"], is_ops=options["ops"])
        self.stdout.write(raw)
        self.stderr.write(
            f"key {key.prefix} for client {key.client.name!r}"
            f"{' (ops)' if key.client.is_ops else ''}: store it now, it is not shown again."
        )
