"""A/B tests at send: which labelled sibling each delivery of a batch is rendered with.

A test is a channel and locale of a template version with several variants, each labelled
(apps/templates/selectors.py variant_group). The first time a recipient meets a test (per
template and channel: the test key `"{template.key}:{channel}"`), notifier.experiments.assign
picks a label from a stable hash of the test key and the recipient's external id, by the
weights of the version the notification was accepted with, and the choice is stored
(VariantAssignment). Every later send reads the stored label: weights edited in a later version
move new recipients only. A stored label that the version being sent no longer has is assigned
again (by that version's weights) and stored in its place.

Writes go through one INSERT ... ON CONFLICT DO NOTHING, then what is stored is used: two
workers racing for one recipient agree (the second reads the first's row). A batch without a
test costs no statement at all; one with a test costs one read, plus (for recipients new to
it) a read of the template keys, the insert and a read of what was stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Q

from apps.deliveries.models import Delivery, VariantAssignment
from apps.templates.models import Template
from apps.templates.selectors import variant_group, variant_weights
from notifier.experiments import assign

Key = tuple[int, str, int]  # (template id, channel, recipient id)


@dataclass
class _Test:
    deliveries: list[Delivery]
    weights: list[tuple[str, int]]


def _stored(keys: Sequence[Key]) -> dict[Key, str]:
    by_test: dict[tuple[int, str], list[int]] = {}
    for template_id, channel, recipient_id in keys:
        by_test.setdefault((template_id, channel), []).append(recipient_id)
    where = Q(pk__in=[])
    for (template_id, channel), recipients in by_test.items():
        where |= Q(template_id=template_id, channel=channel, recipient_id__in=recipients)
    rows = VariantAssignment.objects.filter(where).values_list(
        "template_id", "channel", "recipient_id", "label"
    )
    return {(t, c, r): label for t, c, r, label in rows}


def _choose(tests: dict[Key, _Test], keys: Sequence[Key]) -> dict[Key, str]:
    """A label for each of `keys` by its test's weights (template keys: one query)."""
    ids = {key[0] for key in keys}
    names = dict(Template.objects.filter(pk__in=ids).values_list("pk", "key"))
    chosen = {}
    for key in keys:
        test = tests[key]
        recipient = test.deliveries[0].recipient
        test_key = f"{names[key[0]]}:{key[1]}"
        chosen[key] = assign(test_key, recipient.external_id, test.weights)
    return chosen


def variant_assignments_store(
    *, chosen: dict[Key, str], stale: dict[Key, str] | None = None
) -> dict[Key, str]:
    """Store `chosen` labels for recipients without one (conflicts ignored: a racing worker's
    row wins) and replace the `stale` ones (key -> the stored label no longer offered; only
    while it is still that label); return the labels now stored for all of `chosen`."""
    stale = stale or {}
    fresh = [key for key in chosen if key not in stale]
    VariantAssignment.objects.bulk_create(
        [
            VariantAssignment(template_id=t, channel=c, recipient_id=r, label=chosen[(t, c, r)])
            for t, c, r in fresh
        ],
        ignore_conflicts=True,
    )
    for (t, c, r), old in stale.items():
        VariantAssignment.objects.filter(
            template_id=t, channel=c, recipient_id=r, label=old
        ).update(label=chosen[(t, c, r)])
    return _stored(list(chosen))


def deliveries_variants_assign(deliveries: Sequence[Delivery]) -> None:
    """Set `variant` (in memory; the lifecycle writes it with `sent`) on each delivery whose
    version runs an A/B test for its channel and recipient's locale; others keep ""."""
    tests: dict[Key, _Test] = {}
    for delivery in deliveries:
        version = delivery.notification.template_version
        group = variant_group(
            version=version, channel=delivery.channel, locale=delivery.recipient.locale
        )
        weights = variant_weights(group)
        if not weights:
            continue
        key = (version.template_id, delivery.channel, delivery.recipient_id)
        test = tests.setdefault(key, _Test([], weights))
        test.deliveries.append(delivery)
    if not tests:
        return
    stored = _stored(list(tests))
    offered = {key: {label for label, _ in test.weights} for key, test in tests.items()}
    stale = {k: label for k, label in stored.items() if label not in offered[k]}
    missing = [key for key in tests if key not in stored or key in stale]
    if missing:
        stored.update(
            variant_assignments_store(
                chosen=_choose(tests, missing), stale={k: stale[k] for k in missing if k in stale}
            )
        )
    for key, test in tests.items():
        label = stored[key]
        for delivery in test.deliveries:
            delivery.variant = label
