"""`manage.py seed_analytics_demo [--template welcome] [--days 30] [--force]`: a month of rollups
for the demo client's template, so the analytics page has something to show (screenshots,
demos). Made-up numbers: refused unless DEBUG or --force. Hours that already have rows for the
template are left alone, so a second run adds only the hours since the first."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from apps.ops.analytics_demo import analytics_demo_seed
from apps.templates.models import Template


class Command(BaseCommand):
    help = "Write a month of plausible analytics rollups for one of the demo client's templates."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--client", default="demo")
        parser.add_argument("--template", default="welcome")
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument(
            "--force", action="store_true", help="Write made-up rollups even without DEBUG."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not (settings.DEBUG or options["force"]):
            raise CommandError(
                "made-up analytics: refused unless DEBUG is on (or with --force, knowingly)"
            )
        template = Template.objects.filter(
            client__name=options["client"], key=options["template"]
        ).first()
        if template is None:
            raise CommandError(f"no template {options['template']} of {options['client']}")
        rows = analytics_demo_seed(template=template, days=options["days"], now=timezone.now())
        self.stdout.write(f"{rows} rollup rows for {template.key} ({template.pk})")
