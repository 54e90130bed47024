"""A month of plausible Rollup rows for one template, for the analytics page's screenshot and
its browser test (`manage.py seed_analytics_demo`): written directly, as the aggregator would
have left them, so the page can be shown before any traffic ran."""

from __future__ import annotations

import datetime as dt
import math
import random

from apps.analytics.models import Rollup
from apps.templates.models import Template
from notifier import histograms

# channel -> (provider, deliveries per hour at the daily peak, cost per send in micros)
CHANNELS = {
    "email": ("sendgrid", 60, 100),
    "sms": ("twilio", 12, 7_900),
    "push": ("fcm", 30, 0),
    "inapp": ("inapp", 20, 0),
}
# rate of the sent that are delivered, opened, clicked, read, and the typical accept->sent
# milliseconds, per channel (a table, not comparisons of channel names: tests/test_architecture)
FUNNEL = {
    "email": (0.97, 0.32, 0.06, 0.0, 400),
    "sms": (0.95, 0.0, 0.04, 0.0, 900),
    "push": (0.92, 0.18, 0.03, 0.0, 400),
    "inapp": (1.0, 0.55, 0.08, 0.4, 400),
}


def _hist(samples: int, centre_ms: float, rng: random.Random) -> tuple[list[int], int]:
    hist, total = histograms.empty(), 0
    for _ in range(samples):
        ms = rng.lognormvariate(math.log(centre_ms), 0.6)
        hist[histograms.bucket(ms)] += 1
        total += int(ms)
    return hist, total


def analytics_demo_seed(*, template: Template, days: int = 30, now: dt.datetime) -> int:
    """Hourly rollups of the `days` UTC days up to `now` (a daily curve, some noise, a weekly
    dip) for `template`'s client, except in the hours that already have rows for `template`
    (a second run adds only the new hours). Returns the number of rows written."""
    rng = random.Random(17)  # noqa: S311 - demo numbers, repeatable
    end = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=days)
    taken = set(
        Rollup.objects.filter(template=template, hour__gte=start, hour__lte=end).values_list(
            "hour", flat=True
        )
    )
    rows = []
    hour = start - dt.timedelta(hours=1)
    while hour < end:
        hour += dt.timedelta(hours=1)
        if hour in taken:
            continue
        daily = 0.25 + 0.75 * max(0.0, math.sin(math.pi * (hour.hour - 6) / 16))
        weekly = 0.6 if hour.weekday() >= 5 else 1.0
        for channel, (provider, peak, cost) in CHANNELS.items():
            accepted = int(peak * daily * weekly * rng.uniform(0.8, 1.2))
            if not accepted:
                continue
            skipped = accepted // 25
            sent = accepted - skipped
            delivered_rate, open_rate, click_rate, read_rate, sent_ms = FUNNEL[channel]
            failed = rng.randint(0, max(1, sent // 40))
            a2s, a2s_sum = _hist(sent, sent_ms, rng)
            delivered = int(sent * delivered_rate)
            s2d, s2d_sum = _hist(delivered, 2_500, rng)
            common = {"hour": hour, "client": template.client, "template": template}
            rows.append(
                Rollup(
                    **common,
                    channel=channel,
                    accepted=accepted,
                    skipped=skipped,
                    skipped_reasons={"opted_out": skipped} if skipped else {},
                )
            )
            sending = Rollup(
                **common,
                channel=channel,
                provider=provider,
                sent=sent,
                delivered=delivered,
                opened=int(sent * open_rate * rng.uniform(0.9, 1.1)),
                clicked=int(sent * click_rate * rng.uniform(0.8, 1.2)),
                read=int(sent * read_rate),
                failed=failed,
                dead=rng.randint(0, failed),
                accept_to_sent_ms_sum=a2s_sum,
                sent_to_delivered_ms_sum=s2d_sum,
                cost_micros=sent * cost,
            )
            sending.accept_to_sent_ms_hist = a2s
            sending.sent_to_delivered_ms_hist = s2d
            rows.append(sending)
    Rollup.objects.bulk_create(rows, batch_size=500)
    return len(rows)
