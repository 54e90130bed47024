"""Beat creates the built-in periodic tasks once and leaves operators' edits alone: a real
`celery beat` process, started, edited under, restarted."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import redis
from django.conf import settings
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from tests.support.processes import BIN, ROOT, LoggedProcess, wait_until

pytestmark = pytest.mark.django_db(transaction=True)
BUILT_IN = set(settings.CELERY_BEAT_SCHEDULE)


def start_beat(tmp_name: str) -> LoggedProcess:
    beat = LoggedProcess(
        [
            str(BIN / "celery"),
            "-A",
            "config",
            "beat",
            "--loglevel",
            "DEBUG",
            "--pidfile",
            "",
        ],
        name=tmp_name,
        env=None,
    )
    # Logged once the scheduler has been set up (its entries written or left alone).
    beat.wait_started(lambda: "Ticking with max interval" in beat.log(), "beat")
    return beat


@pytest.fixture
def beats(clean_redis: redis.Redis) -> Iterator[list[LoggedProcess]]:
    started: list[LoggedProcess] = []
    yield started
    for beat in started:
        beat.stop()
    clean_redis.flushdb()  # what beat published to the maintenance queue


def test_an_interval_edited_in_the_admin_survives_a_beat_restart(
    beats: list[LoggedProcess],
) -> None:
    assert not PeriodicTask.objects.filter(name__in=BUILT_IN).exists()
    beats.append(start_beat("beat-first"))
    beats[0].stop()
    created = {t.name: t for t in PeriodicTask.objects.filter(name__in=BUILT_IN)}
    assert set(created) == BUILT_IN
    assert created["deliveries-reconcile"].interval.every == 15  # the setting's default

    # An operator makes reconcile run every 2 minutes and turns retention off, in the admin.
    reconcile = created["deliveries-reconcile"]
    reconcile.interval = IntervalSchedule.objects.create(every=120, period=IntervalSchedule.SECONDS)
    reconcile.save()
    PeriodicTask.objects.filter(name="deliveries-purge-history").update(enabled=False)
    # And deletes one built-in task: the next start creates it again.
    PeriodicTask.objects.filter(name="recipients-prune-devices").delete()

    beats.append(start_beat("beat-again"))
    wait_until(lambda: PeriodicTask.objects.filter(name="recipients-prune-devices").exists())

    after = {t.name: t for t in PeriodicTask.objects.filter(name__in=BUILT_IN)}
    assert after["deliveries-reconcile"].interval.every == 120
    assert after["deliveries-purge-history"].enabled is False
    assert after["deliveries-release-due"].interval.every == 5
    assert "DatabaseScheduler, which rewrites" not in beats[1].log()


@pytest.mark.parametrize("path", ["Procfile", "Procfile.dev", "docker/compose.yaml"])
def test_every_beat_command_runs_the_scheduler_that_keeps_admin_edits(path: str) -> None:
    """`--scheduler` on the command line wins over CELERY_BEAT_SCHEDULER: django-celery-beat's
    own one there would rewrite the admin's edits on each start."""
    lines = [
        line
        for line in (ROOT / path).read_text().splitlines()
        if re.search(r"\bcelery\b.*\bbeat\b", line)
    ]

    assert lines, f"{path}: no beat command"
    for line in lines:
        schedulers = re.findall(r"(?:--scheduler|-S)[ =]([^\s\"']+)", line)
        assert schedulers in ([], [settings.CELERY_BEAT_SCHEDULER]), f"{path}: {line.strip()}"
    assert settings.CELERY_BEAT_SCHEDULER == "apps.ops.beat:DatabaseScheduler"
