"""Sticky A/B assignment at send (apps/deliveries/assignments.py), against PostgreSQL: the split
follows the weights, stored labels stay when weights change, racing batches agree, and a batch
without a test costs no statement."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from apps.deliveries.assignments import deliveries_variants_assign
from apps.deliveries.models import Delivery, Notification, VariantAssignment
from apps.recipients.models import Recipient
from apps.templates.models import Template, TemplateVersion
from apps.templates.selectors import variant_pick
from apps.templates.services import template_version_create
from tests.factories import ApiClientFactory, NotificationFactory, TemplateFactory


def ab(a: int, b: int, *, c: int | None = None) -> list[dict[str, Any]]:
    """Email variants A and B (and C) with these weights, plus an SMS variant without a test."""
    variants: list[dict[str, Any]] = [
        {"channel": "email", "label": "A", "weight": a, "subject": "A {{ order_id }}", "body": "a"},
        {"channel": "email", "label": "B", "weight": b, "subject": "B {{ order_id }}", "body": "b"},
        {"channel": "sms", "body": "Order {{ order_id }}"},
    ]
    if c is not None:
        variants[1] = {**variants[1], "label": "C", "weight": c, "subject": "C {{ order_id }}"}
    return variants


def recipients(client: Any, n: int, *, prefix: str = "r") -> list[Recipient]:
    return Recipient.objects.bulk_create(
        Recipient(client=client, external_id=f"{prefix}-{i}", email=f"{prefix}{i}@x.test")
        for i in range(n)
    )


def batch(notification: Notification, people: list[Recipient], channel: str = "email") -> list:
    """Unsaved deliveries as the send batch holds them (its template version loaded)."""
    return [Delivery(notification=notification, recipient=r, channel=channel) for r in people]


def notification_for(template: Template, version: TemplateVersion) -> Notification:
    return NotificationFactory(client=template.client, template=template, template_version=version)


def stored(template: Template) -> dict[str, str]:
    rows = VariantAssignment.objects.filter(template=template, channel="email")
    return {r.recipient.external_id: r.label for r in rows.select_related("recipient")}


@pytest.mark.django_db
def test_1000_recipients_split_within_a_few_percent_of_70_30_and_each_is_stored() -> None:
    template = TemplateFactory(key="welcome", variants=ab(70, 30))
    notification = notification_for(template, template.versions.get())
    people = recipients(template.client, 1000)
    deliveries = batch(notification, people)

    deliveries_variants_assign(deliveries)

    split = Counter(d.variant for d in deliveries)
    assert set(split) == {"A", "B"}
    # 70% +- 4 points (one sd of a fair 70/30 draw of 1000 is 1.45 points). The hash is
    # deterministic: these ids give 668 every run (100,000 of them give 69.9%).
    assert 660 <= split["A"] <= 740, split
    assert split["A"] + split["B"] == 1000
    assert stored(template) == {d.recipient.external_id: d.variant for d in deliveries}


@pytest.mark.django_db
def test_the_same_recipient_gets_the_same_label_on_every_send_and_the_copy_follows_it() -> None:
    template = TemplateFactory(key="welcome", variants=ab(1, 1))
    version = template.versions.get()
    people = recipients(template.client, 40)
    first = batch(notification_for(template, version), people)
    deliveries_variants_assign(first)
    labels = [d.variant for d in first]

    for _ in range(3):
        again = batch(notification_for(template, version), people)
        deliveries_variants_assign(again)
        assert [d.variant for d in again] == labels
    assert set(labels) == {"A", "B"}  # 40 recipients at 50/50: both arms used
    assert VariantAssignment.objects.count() == 40
    picked = variant_pick(version=version, channel="email", locale="en", label=labels[0])
    assert picked is not None
    assert picked.subject.startswith(labels[0])


@pytest.mark.django_db
def test_weights_edited_mid_test_keep_the_assigned_and_move_only_new_recipients() -> None:
    template = TemplateFactory(key="welcome", variants=ab(1, 1))
    early = recipients(template.client, 100, prefix="early")
    before = batch(notification_for(template, template.versions.get()), early)
    deliveries_variants_assign(before)
    kept = {d.recipient_id: d.variant for d in before}
    assert set(kept.values()) == {"A", "B"}

    edited = template_version_create(template=template, variants=ab(0, 1))  # all new ones to B
    late = recipients(template.client, 50, prefix="late")
    after = batch(notification_for(template, edited), early + late)
    deliveries_variants_assign(after)

    assert {d.recipient_id: d.variant for d in after[:100]} == kept
    assert [d.variant for d in after[100:]] == ["B"] * 50


@pytest.mark.django_db
def test_a_stored_label_the_version_no_longer_has_is_assigned_again_and_stored() -> None:
    template = TemplateFactory(key="welcome", variants=ab(1, 1))
    people = recipients(template.client, 60)
    deliveries_variants_assign(batch(notification_for(template, template.versions.get()), people))
    was = stored(template)
    had_a = {k for k, v in was.items() if v == "A"}
    assert had_a
    assert len(had_a) < 60

    renamed = template_version_create(template=template, variants=ab(1, 0, c=1))  # B is now C
    after = batch(notification_for(template, renamed), people)
    deliveries_variants_assign(after)

    now = {d.recipient.external_id: d.variant for d in after}
    assert {k for k, v in now.items() if v == "A"} == had_a  # A is still offered: kept
    assert {k for k, v in now.items() if v != "A"} == set(was) - had_a
    assert {v for k, v in now.items() if k not in had_a} == {"C"}
    assert stored(template) == now


def race(notifications: list[Notification], orders: list[list[Recipient]]) -> list[list[Delivery]]:
    """Assign two batches at once, batch i for notifications[i] and recipients orders[i] (each
    thread on its own connection, started together); errors (a deadlock) fail the test."""
    barrier = threading.Barrier(2)
    results: list[list[Delivery]] = [[], []]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            by_pk = Recipient.objects.in_bulk([p.pk for p in orders[index]])
            deliveries = batch(
                Notification.objects.select_related("template_version").get(
                    pk=notifications[index].pk
                ),
                [by_pk[p.pk] for p in orders[index]],
            )
            barrier.wait(timeout=30)
            deliveries_variants_assign(deliveries)
            results[index] = deliveries
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    return results


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("reverse", [False, True], ids=["same-order", "reversed-order"])
def test_two_batches_racing_for_the_same_recipients_agree(reverse: bool) -> None:
    """Two versions whose weights send everyone new to A (the first) and to B (the second):
    two batches for the same recipients at once, one per version, in the same or in opposite
    order (rows written in batch order would deadlock). Whichever stores a recipient's label
    first decides it for both."""
    template = TemplateFactory(key="welcome", variants=ab(1, 0))
    to_a = template.versions.get()
    to_b = template_version_create(template=template, variants=ab(0, 1))
    people = recipients(template.client, 400)
    notifications = [notification_for(template, to_a), notification_for(template, to_b)]

    results = race(notifications, [people, people[::-1] if reverse else people])

    first, second = ({d.recipient_id: d.variant for d in r} for r in results)
    assert len(first) == 400
    assert first == second
    assert set(first.values()) <= {"A", "B"}
    rows = dict(VariantAssignment.objects.values_list("recipient_id", "label"))
    assert rows == first


@pytest.mark.django_db(transaction=True)
def test_two_batches_replacing_the_same_stale_labels_in_opposite_order_agree() -> None:
    """Everyone stored on B, then the current version drops B: two batches of it replace the
    same stale rows at once, in opposite order, and agree on the new labels."""
    template = TemplateFactory(key="welcome", variants=ab(0, 1))
    people = recipients(template.client, 400)
    deliveries_variants_assign(batch(notification_for(template, template.versions.get()), people))
    assert set(stored(template).values()) == {"B"}
    renamed = template_version_create(template=template, variants=ab(1, 0, c=1))
    notifications = [notification_for(template, renamed), notification_for(template, renamed)]

    results = race(notifications, [people, people[::-1]])

    first, second = ({d.recipient_id: d.variant for d in r} for r in results)
    assert len(first) == 400
    assert first == second
    assert set(first.values()) == {"A", "C"}
    assert dict(VariantAssignment.objects.values_list("recipient_id", "label")) == first


@pytest.mark.django_db
def test_a_batch_without_a_test_costs_no_statement_and_one_with_stored_labels_costs_one() -> None:
    client = ApiClientFactory()
    plain = TemplateFactory(client=client, key="plain")
    tested = TemplateFactory(client=client, key="welcome", variants=ab(1, 1))
    people = recipients(client, 20)
    plain_batch = batch(notification_for(plain, plain.versions.get()), people)
    sms_batch = batch(notification_for(tested, tested.versions.get()), people, channel="sms")
    email = batch(notification_for(tested, tested.versions.get()), people)
    for deliveries in (plain_batch, sms_batch, email):  # the version caches, as a worker's
        variant_pick(version=deliveries[0].notification.template_version, channel="x", locale="en")
    deliveries_variants_assign(email)

    with CaptureQueriesContext(connection) as none:
        deliveries_variants_assign(plain_batch)
        deliveries_variants_assign(sms_batch)
    again = batch(notification_for(tested, tested.versions.get()), people)
    with CaptureQueriesContext(connection) as one:
        deliveries_variants_assign(again)

    assert none.captured_queries == []
    assert [d.variant for d in plain_batch + sms_batch] == [""] * 40
    assert len(one.captured_queries) == 1
    assert [d.variant for d in again] == [d.variant for d in email]


@pytest.mark.django_db
def test_stale_labels_are_replaced_in_one_delete_and_one_insert() -> None:
    template = TemplateFactory(key="welcome", variants=ab(0, 1))
    people = recipients(template.client, 30)
    deliveries_variants_assign(batch(notification_for(template, template.versions.get()), people))
    renamed = template_version_create(template=template, variants=ab(1, 0, c=1))
    after = batch(notification_for(template, renamed), people)
    variant_pick(version=renamed, channel="x", locale="en")  # the version cached, as a worker's

    with CaptureQueriesContext(connection) as replaced:
        deliveries_variants_assign(after)

    verbs = [q["sql"].split()[0] for q in replaced.captured_queries]
    # stored labels, current versions, template keys, the delete, the insert, the read back
    assert verbs == ["SELECT", "SELECT", "SELECT", "DELETE", "INSERT", "SELECT"]
    assert {d.variant for d in after} == {"A", "C"}
    assert stored(template) == {d.recipient.external_id: d.variant for d in after}


@pytest.mark.django_db
def test_an_older_version_never_overwrites_a_stored_label_and_sends_one_it_offers() -> None:
    """Stored labels B, then version 2 renames B to C (current), then a notification accepted
    with version 1 (A and B) and one with version 2 go out alternately: version 2 replaces B by
    C once; version 1 finds C, which it does not offer, picks A or B in memory for that send and
    stores nothing, so the stored label stays C (no flip-flopping)."""
    template = TemplateFactory(key="welcome", variants=ab(0, 1))
    v1 = template.versions.get()
    people = recipients(template.client, 20)
    deliveries_variants_assign(batch(notification_for(template, v1), people))
    v2 = template_version_create(template=template, variants=ab(1, 0, c=1))

    for _ in range(2):
        new = batch(notification_for(template, v2), people)
        deliveries_variants_assign(new)
        old = batch(notification_for(template, v1), people)
        deliveries_variants_assign(old)

        assert {d.variant for d in new} <= {"A", "C"}
        assert {d.variant for d in old} <= {"A", "B"}
        assert stored(template) == {d.recipient.external_id: d.variant for d in new}
    # Version 1's weights (A 0, B 1) for the recipients version 2 moved to C.
    moved = [d for d in new if d.variant == "C"]
    assert moved
    assert {o.variant for o, n in zip(old, new, strict=True) if n.variant == "C"} == {"B"}


@pytest.mark.django_db
def test_a_lone_labelled_variant_is_no_test() -> None:
    template = TemplateFactory(
        key="welcome",
        variants=[{"channel": "email", "label": "A", "weight": 3, "subject": "s", "body": "b"}],
    )
    version = template.versions.get()
    people = recipients(template.client, 10)
    deliveries = batch(notification_for(template, version), people)
    variant_pick(version=version, channel="x", locale="en")  # the version cached

    with CaptureQueriesContext(connection) as queries:
        deliveries_variants_assign(deliveries)

    assert queries.captured_queries == []
    assert [d.variant for d in deliveries] == [""] * 10
    assert VariantAssignment.objects.count() == 0
