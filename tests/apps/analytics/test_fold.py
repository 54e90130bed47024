"""The aggregator's fold: firsts, attribution, hours, latency histograms, skip reasons, cost,
and that folding again (or in other batches) never changes a total."""

from __future__ import annotations

import pytest
from django.db.models import Sum

from apps.analytics import services, tasks
from apps.analytics.fold_selectors import SENT_GROUP, rollup_totals, timeline_totals
from apps.analytics.increments import POST_SEND, PRE_SEND
from apps.analytics.models import COUNTERS, Rollup, bucket_columns
from apps.analytics.services import rollup_fold, rollups_fold_pending
from apps.deliveries.counting import COUNTING_STATUSES
from apps.deliveries.models import Attempt, Delivery, DeliveryEvent, Notification
from notifier import histograms
from notifier.routing import Reason
from tests.apps.analytics.helpers import T0, delivery, event, seconds
from tests.factories import AttemptFactory, NotificationFactory

pytestmark = pytest.mark.django_db

HOUR = T0.replace(minute=0)


def _row(**key: object) -> Rollup:
    return Rollup.objects.get(**key)


def _counters(row: Rollup) -> dict[str, int]:
    return {name: getattr(row, name) for name in COUNTERS if getattr(row, name)}


def test_a_funnel_counts_each_first_once_with_pre_send_counts_outside_the_variant() -> None:
    d = delivery(channel="email", variant="B", provider="sendgrid")
    event(d, "queued", T0, "accepted")
    event(d, "sent", T0 + seconds(2), "accepted by sendgrid")
    event(d, "delivered", T0 + seconds(5))
    event(d, "opened", T0 + seconds(60))
    event(d, "opened", T0 + seconds(70))  # a second open: no new first
    event(d, "clicked", T0 + seconds(80))
    Delivery.objects.filter(pk=d.pk).update(sent_at=T0 + seconds(2))

    assert rollup_fold().events == 6

    key = {"hour": HOUR, "client": d.notification.client, "channel": "email"}
    pre = _row(**key, variant="", provider="")
    post = _row(**key, variant="B", provider="sendgrid")
    assert _counters(pre) == {"accepted": 1}
    assert _counters(post) == {"sent": 1, "delivered": 1, "opened": 1, "clicked": 1}
    assert post.template_id == d.notification.template_id
    assert (post.accept_to_sent_ms_sum, post.sent_to_delivered_ms_sum) == (2000, 3000)
    assert post.accept_to_sent_ms_hist[histograms.bucket(2000)] == 1
    assert sum(post.accept_to_sent_ms_hist) == 1
    assert post.sent_to_delivered_ms_hist == _hist_with(histograms.bucket(3000))
    assert histograms.bucket(2000) == 5  # the 2.5 s bucket
    assert histograms.bucket(3000) == 6  # the 5 s bucket
    assert Rollup.objects.count() == 2
    assert DeliveryEvent.objects.filter(counted=False).count() == 0


def _hist_with(index: int) -> list[int]:
    hist = histograms.empty()
    hist[index] = 1
    return hist


def test_a_report_that_overtook_the_worker_is_the_sent_and_the_record_row_no_first() -> None:
    d = delivery(channel="sms", provider="twilio")
    event(d, "queued", T0)
    event(d, "delivered", T0 + seconds(1))  # Twilio's callback before the worker's write
    event(d, "delivered", T0 + seconds(2), "attempt 1 finished after twilio reported delivered")
    # The worker's record sets sent_at after the delivered event: the delay is unknown, so no
    # sample (not a 0 ms one that would drag p50 down).
    Delivery.objects.filter(pk=d.pk).update(sent_at=T0 + seconds(2))

    rollups_fold_pending()

    post = _row(channel="sms", provider="twilio")
    assert _counters(post) == {"sent": 1, "delivered": 1}
    assert post.accept_to_sent_ms_sum == 1000
    assert (post.sent_to_delivered_ms_sum, post.sent_to_delivered_ms_hist) == (
        0,
        histograms.empty(),
    )


def test_a_delivered_report_at_the_same_instant_as_sent_at_is_a_0_ms_sample() -> None:
    d = delivery(channel="sms", provider="twilio")
    event(d, "queued", T0)
    event(d, "sent", T0 + seconds(1))
    event(d, "delivered", T0 + seconds(1))
    Delivery.objects.filter(pk=d.pk).update(sent_at=T0 + seconds(1))

    rollups_fold_pending()

    post = _row(channel="sms", provider="twilio")
    assert (post.sent_to_delivered_ms_sum, post.sent_to_delivered_ms_hist) == (0, _hist_with(0))


def test_retries_a_replay_and_a_second_death_count_one_dead() -> None:
    d = delivery(channel="email", provider="sendgrid")
    event(d, "queued", T0)
    event(d, "retrying", T0 + seconds(1))
    event(d, "retrying", T0 + seconds(3))
    event(d, "dead", T0 + seconds(9))
    event(d, "queued", T0 + seconds(20), "replayed by ops")
    event(d, "dead", T0 + seconds(30))

    rollups_fold_pending()

    assert _counters(_row(provider="sendgrid")) == {"dead": 1}
    assert _counters(_row(provider="")) == {"accepted": 1}


def test_skips_cancels_and_digests_count_before_any_send_with_their_reason_codes() -> None:
    notification = NotificationFactory()
    common = {"notification": notification, "channel": "email"}
    opted = delivery(**common, status="skipped", reason=Reason.OPTED_OUT.message(channel="email"))
    event(opted, "skipped", T0, opted.reason)
    quiet = delivery(**common, status="queued", variant="A", provider="sendgrid")
    event(quiet, "queued", T0)
    event(quiet, "skipped", T0 + seconds(1))
    Delivery.objects.filter(pk=quiet.pk).update(status="skipped", reason="quiet hours")
    odd = delivery(**common, status="skipped", reason="something else")
    event(odd, "skipped", T0)
    cancelled = delivery(**common, status="cancelled")
    event(cancelled, "scheduled", T0)
    event(cancelled, "cancelled", T0 + seconds(5))
    digested = delivery(**common, status="digested")
    event(digested, "digested", T0)
    event(digested, "digested", T0 + seconds(50), "sent in digest 1 as delivery x")

    rollups_fold_pending()

    row = Rollup.objects.get()  # all before a send: variant "" and provider ""
    assert (row.variant, row.provider) == ("", "")
    assert _counters(row) == {"accepted": 5, "skipped": 3, "cancelled": 1, "digested": 1}
    assert row.skipped_reasons == {"opted_out": 1, "quiet_hours": 1, "other": 1}


def test_events_fall_in_the_utc_hour_of_their_time() -> None:
    d = delivery(channel="email", provider="sendgrid", created=T0.replace(minute=59))
    event(d, "queued", T0.replace(minute=59))
    event(d, "sent", T0.replace(minute=59) + seconds(90))

    rollups_fold_pending()

    assert Rollup.objects.get(hour=HOUR).accepted == 1
    later = Rollup.objects.get(hour=HOUR + seconds(3600))
    assert (later.sent, later.accept_to_sent_ms_sum) == (1, 90_000)


def test_cost_comes_from_attempts_in_their_hour_under_the_variant_and_the_attempt_provider() -> (
    None
):
    d = delivery(channel="sms", variant="B", provider="twilio")
    AttemptFactory(delivery=d, provider="twilio", outcome="transient", finished_at=T0)
    AttemptFactory(
        delivery=d,
        number=2,
        provider="twilio",
        outcome="sent",
        cost_micros=16_600,
        finished_at=T0 + seconds(3600),
    )

    folded = rollups_fold_pending()

    assert folded.attempts == 2
    row = Rollup.objects.get()
    assert (row.hour, row.variant, row.provider, row.cost_micros) == (
        HOUR + seconds(3600),
        "B",
        "twilio",
        16_600,
    )
    assert Attempt.objects.filter(counted=False).count() == 0


def _skip(notification: Notification, n: int, reason: str) -> None:
    d = delivery(notification=notification, channel="email", reason=reason)
    event(d, "skipped", T0 + seconds(n))


def _mixed_timelines() -> None:
    skips = NotificationFactory()
    _skip(skips, 0, "opted out of email")  # and again below: added up across folds' upserts
    for n in range(7):
        d = delivery(channel="email", variant="AB"[n % 2], provider="sendgrid")
        event(d, "queued", T0 + seconds(n))
        event(d, "sent", T0 + seconds(n + 1))
        if n % 3:
            event(d, "delivered", T0 + seconds(n + 2))
            event(d, "opened", T0 + seconds(n + 3))
            event(d, "opened", T0 + seconds(n + 4))
        else:
            event(d, "failed", T0 + seconds(n + 2))
        AttemptFactory(delivery=d, outcome="sent", cost_micros=400, finished_at=T0)
    _skip(skips, 1, "quiet hours")
    _skip(skips, 2, "opted out of email")


def _folded_rows() -> list[tuple[object, ...]]:
    columns = ("variant", "provider", *COUNTERS, "cost_micros", "accept_to_sent_ms_sum")
    columns += ("sent_to_delivered_ms_sum", "skipped_reasons")
    rows = Rollup.objects.values_list(*columns, *bucket_columns("accept_to_sent"))
    return sorted(rows, key=repr)


def test_folding_again_or_in_other_batches_changes_nothing() -> None:
    _mixed_timelines()
    rollups_fold_pending(limit=1000)
    whole = _folded_rows()
    assert sum(row[2 + COUNTERS.index("skipped")] for row in whole) == 3

    assert rollup_fold().rows == 0  # nothing left
    Rollup.objects.all().delete()
    DeliveryEvent.objects.update(counted=False)
    Attempt.objects.update(counted=False)
    folded = rollups_fold_pending(limit=3)  # batches of 3, cutting timelines anywhere

    assert folded.events == DeliveryEvent.objects.count()
    assert _folded_rows() == whole
    assert rollup_totals() == timeline_totals()
    assert rollup_totals()["cost_micros"] == 7 * 400
    assert Rollup.objects.aggregate(s=Sum("opened"))["s"] == 4


def test_the_task_does_nothing_while_analytics_is_off(settings: object) -> None:
    _mixed_timelines()
    settings.ANALYTICS_ENABLED = False  # type: ignore[attr-defined]

    assert tasks.fold.run() == 0
    assert Rollup.objects.count() == 0
    assert DeliveryEvent.objects.filter(counted=True).count() == 0

    settings.ANALYTICS_ENABLED = True  # type: ignore[attr-defined]
    assert tasks.fold.run() == DeliveryEvent.objects.count() + Attempt.objects.count()
    assert rollup_totals() == timeline_totals()


def test_a_fold_that_fails_before_its_commit_leaves_every_row_uncounted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _mixed_timelines()

    added = services._rollups_add

    def broken(*args: object, **kwargs: object) -> None:
        added(*args, **kwargs)  # the rollup rows written, then the fold dies before its commit
        assert Rollup.objects.exists()
        raise RuntimeError("killed mid-fold")

    with monkeypatch.context() as patch:
        patch.setattr(services, "_rollups_add", broken)
        with pytest.raises(RuntimeError):
            rollup_fold()

    assert Rollup.objects.count() == 0
    assert DeliveryEvent.objects.filter(counted=True).count() == 0
    rollups_fold_pending()
    assert rollup_totals() == timeline_totals()


def test_the_statuses_written_to_the_queue_are_exactly_those_the_fold_counts() -> None:
    # A timeline row in any other status is inserted counted (apps/deliveries/counting.py):
    # a counter missing there would never be folded.
    assert {*PRE_SEND, *POST_SEND, *SENT_GROUP} == COUNTING_STATUSES
