from __future__ import annotations

from collections.abc import Sequence

from django.db import models

from apps.clients.models import ApiClient
from apps.templates.models import Template
from notifier import histograms
from notifier.types import Channel

# The funnel's counters, in the order the API and the CSV show them.
COUNTERS = (
    "accepted",
    "skipped",
    "digested",
    "cancelled",
    "sent",
    "delivered",
    "opened",
    "clicked",
    "read",
    "failed",
    "dead",
)


class Rollup(models.Model):
    """What the pipeline did in one hour for one client x template x channel x A/B label x
    provider, kept up to date by the aggregator (apps/analytics), never by a scan at query time.

    Each counter counts deliveries that reached that status for the first time in this hour
    (`accepted`: created; `sent`: first accepted by a provider, however it was learnt). Latency
    is a sum and a histogram (notifier.histograms) per measure: accept->sent over the `sent`
    deliveries, sent->delivered over the `delivered` ones. `cost_micros` adds up the accepted
    attempts' costs (millionths of ANALYTICS_CURRENCY).
    """

    hour = models.DateTimeField()
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=[(c.value, c.value) for c in Channel])
    # The A/B label ("" outside a test, and for what happened before the send chose one).
    variant = models.CharField(max_length=20, blank=True, default="")
    # The provider that sent it ("" before a send).
    provider = models.CharField(max_length=30, blank=True, default="")
    accepted = models.BigIntegerField(default=0)
    skipped = models.BigIntegerField(default=0)
    digested = models.BigIntegerField(default=0)
    cancelled = models.BigIntegerField(default=0)
    sent = models.BigIntegerField(default=0)
    delivered = models.BigIntegerField(default=0)
    opened = models.BigIntegerField(default=0)
    clicked = models.BigIntegerField(default=0)
    read = models.BigIntegerField(default=0)
    failed = models.BigIntegerField(default=0)
    dead = models.BigIntegerField(default=0)
    # {"reason": count} for the skipped ones.
    skipped_reasons = models.JSONField(default=dict, blank=True)
    accept_to_sent_ms_sum = models.BigIntegerField(default=0)
    sent_to_delivered_ms_sum = models.BigIntegerField(default=0)
    cost_micros = models.BigIntegerField(default=0)
    # ...and each histogram's buckets, one column each (`<measure>_ms_<i>`, added below): a
    # month's report sums them in SQL like the counters (a JSON list's elements cost about
    # three times the rest of the query to extract). `<measure>_ms_hist` reads and sets them
    # as a list.

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "client", "template", "channel", "variant", "provider"],
                name="rollup_unique_key",
            )
        ]
        indexes = [
            # A client's queries read its own hours; an ops key's read every client's
            # (the unique constraint's index, hour first).
            models.Index(fields=["client", "hour"], name="rollup_client_hour"),
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}h {self.channel} {self.variant or '-'}"

    @property
    def accept_to_sent_ms_hist(self) -> list[int]:
        return [getattr(self, column) for column in bucket_columns("accept_to_sent")]

    @accept_to_sent_ms_hist.setter
    def accept_to_sent_ms_hist(self, histogram: Sequence[int]) -> None:
        _buckets_set(self, "accept_to_sent", histogram)

    @property
    def sent_to_delivered_ms_hist(self) -> list[int]:
        return [getattr(self, column) for column in bucket_columns("sent_to_delivered")]

    @sent_to_delivered_ms_hist.setter
    def sent_to_delivered_ms_hist(self, histogram: Sequence[int]) -> None:
        _buckets_set(self, "sent_to_delivered", histogram)


# The latency measures with a histogram (notifier.histograms), and their sample counters.
MEASURES = {"accept_to_sent": "sent", "sent_to_delivered": "delivered"}


def bucket_columns(measure: str) -> list[str]:
    """The columns of `measure`'s histogram, bucket 0 first."""
    return [f"{measure}_ms_{i}" for i in range(histograms.SIZE)]


def _buckets_set(row: Rollup, measure: str, histogram: Sequence[int]) -> None:
    padded = histograms.add(histograms.empty(), histogram)
    for column, count in zip(bucket_columns(measure), padded, strict=True):
        setattr(row, column, count)


for _measure in MEASURES:
    for _column in bucket_columns(_measure):
        Rollup.add_to_class(_column, models.BigIntegerField(default=0, db_default=0))
