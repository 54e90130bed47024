"""A/B tests at send: which labelled sibling each delivery of a batch is rendered with.

A test is a channel and locale of a template version with two or more variants, labelled
(apps/templates/selectors.py variant_weights). The first time a recipient meets a test (per
template and channel: the test key `"{template.key}:{channel}"`, shared by the channel's
locales), notifier.experiments.assign picks a label from a stable hash of the test key and the
recipient's external id, by the weights of the version the notification was accepted with, and
the choice is stored (VariantAssignment). Every later send reads the stored label: weights edited
in a later version move new recipients only.

A stored label that the delivery's version does not offer is replaced (by that version's
weights) only when that version is the template's current one; a delivery of an older version
gets a label picked in memory for that send, nothing stored, so assignments do not flip back and
forth between versions. A label read back that the version does not offer (a racing worker
stored one from another version) is likewise replaced in memory: `variant` is always a label of
the version being rendered (compose.py renders exactly it).

Writes: stale rows go in one DELETE, then one INSERT ... ON CONFLICT DO NOTHING of every row to
write, both in key order (two batches holding the same recipients in another order cannot
deadlock), then what is stored is read back and used: two workers racing for one recipient agree.
A batch without a test costs no statement at all; one with a test costs one read, plus (for
recipients new to it) a read of the template keys, the insert and a read back, plus (for stale
labels) a read of the templates' current version numbers and the delete.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Max, Q

from apps.deliveries.models import Delivery, VariantAssignment
from apps.templates.models import Template, TemplateVersion
from apps.templates.selectors import variant_group, variant_weights
from notifier.experiments import assign

Key = tuple[int, str, int]  # (template id, channel, recipient id)


@dataclass
class _Send:
    delivery: Delivery
    key: Key
    weights: list[tuple[str, int]]

    @property
    def offered(self) -> set[str]:
        return {label for label, _ in self.weights}


def _where(keys: Sequence[Key]) -> Q:
    by_test: dict[tuple[int, str], list[int]] = {}
    for template_id, channel, recipient_id in keys:
        by_test.setdefault((template_id, channel), []).append(recipient_id)
    where = Q(pk__in=[])
    for (template_id, channel), recipients in sorted(by_test.items()):
        where |= Q(template_id=template_id, channel=channel, recipient_id__in=sorted(recipients))
    return where


def _stored(keys: Sequence[Key]) -> dict[Key, str]:
    rows = VariantAssignment.objects.filter(_where(keys)).values_list(
        "template_id", "channel", "recipient_id", "label"
    )
    return {(t, c, r): label for t, c, r, label in rows}


class _Chooser:
    """notifier.experiments.assign for a send, the template keys read once (one query)."""

    def __init__(self, sends: Sequence[_Send]) -> None:
        self._ids = {s.key[0] for s in sends}
        self._names: dict[int, str] | None = None

    def __call__(self, send: _Send) -> str:
        if self._names is None:
            self._names = dict(Template.objects.filter(pk__in=self._ids).values_list("pk", "key"))
        test_key = f"{self._names[send.key[0]]}:{send.key[1]}"
        return assign(test_key, send.delivery.recipient.external_id, send.weights)


def variant_assignments_store(
    *, chosen: dict[Key, str], stale: dict[Key, str] | None = None
) -> dict[Key, str]:
    """Store `chosen` labels: first the `stale` rows (key -> the stored label no longer offered;
    only while it is still that label) are deleted in one statement, then every chosen row is
    inserted in one statement, conflicts ignored (a racing worker's row wins), both in key order.
    Returns the labels now stored for all of `chosen`."""
    stale = stale or {}
    if stale:
        where = Q(pk__in=[])
        for (t, c, r), old in sorted(stale.items()):
            where |= Q(template_id=t, channel=c, recipient_id=r, label=old)
        # The rows are locked in key order by the ordered subquery, then deleted.
        locked = (
            VariantAssignment.objects.filter(where)
            .order_by("template_id", "channel", "recipient_id")
            .select_for_update()
            .values("pk")
        )
        VariantAssignment.objects.filter(pk__in=locked).delete()
    VariantAssignment.objects.bulk_create(
        [
            VariantAssignment(template_id=t, channel=c, recipient_id=r, label=chosen[(t, c, r)])
            for t, c, r in sorted(chosen)
        ],
        ignore_conflicts=True,
    )
    return _stored(list(chosen))


def _current_numbers(sends: Sequence[_Send]) -> dict[int, int]:
    ids = {s.key[0] for s in sends}
    rows = (
        TemplateVersion.objects.filter(template_id__in=ids)
        .values("template_id")
        .annotate(current=Max("number"))
        .values_list("template_id", "current")
    )
    return dict(rows)


def deliveries_variants_assign(deliveries: Sequence[Delivery]) -> None:
    """Set `variant` (in memory; the lifecycle writes it with the attempt's outcome) on each
    delivery whose version runs an A/B test for its channel and recipient's locale; others
    keep ""."""
    sends: list[_Send] = []
    for delivery in deliveries:
        version = delivery.notification.template_version
        group = variant_group(
            version=version, channel=delivery.channel, locale=delivery.recipient.locale
        )
        weights = variant_weights(group)
        if weights:
            key = (version.template_id, delivery.channel, delivery.recipient_id)
            sends.append(_Send(delivery, key, weights))
    if not sends:
        return
    stored = _stored([s.key for s in sends])
    choose = _Chooser(sends)
    outdated = [s for s in sends if s.key in stored and stored[s.key] not in s.offered]
    current = _current_numbers(outdated) if outdated else {}
    chosen: dict[Key, str] = {}
    stale: dict[Key, str] = {}
    for send in sends:
        have = stored.get(send.key)
        if send.key in chosen or have in send.offered:
            continue
        if have is None:
            chosen[send.key] = choose(send)
        elif send.delivery.notification.template_version.number == current[send.key[0]]:
            chosen[send.key] = choose(send)
            stale[send.key] = have
    if chosen:
        stored.update(variant_assignments_store(chosen=chosen, stale=stale))
    for send in sends:
        label = stored.get(send.key, "")
        send.delivery.variant = label if label in send.offered else choose(send)


def variant_assignments_delete(*, template_id: int, channel: str) -> int:
    """Forget the stored A/B assignments of a template's channel (its test ended): a later test
    there assigns everyone afresh. Returns the number deleted."""
    deleted, _ = VariantAssignment.objects.filter(template_id=template_id, channel=channel).delete()
    return deleted
