"""The checks of a notification request before anything is written: the template, its
variables, channels, escalation and digest (`request_check`), then the recipients, their
suppressions and a render of each variant they will get (`recipients_check`). Each failure is
the caller's 400 (InvalidInput)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from apps.clients.models import ApiClient
from apps.core.errors import InvalidInput
from apps.deliveries.digests import digest_declared, digest_key
from apps.deliveries.workflows import escalation_check
from apps.recipients.models import Recipient
from apps.recipients.selectors import recipient_context, recipients_for_sending
from apps.templates.cache import template_versions
from apps.templates.models import Template
from apps.templates.selectors import version_channels, version_labelled_channels
from apps.templates.validation import version_render_check
from notifier.digests import DigestSpec
from notifier.rendering import DIGEST_VARIABLES
from notifier.workflows import escalation_channels

if TYPE_CHECKING:
    from apps.deliveries.services import NotificationRequest


@dataclass
class Checked:
    template: Template
    version: Any
    channels: list[str]
    fallback: list[str]
    recipients: list[Recipient]
    suppressed: set[tuple[int, str]]
    unknown: list[str]
    digest: DigestSpec | None = None
    digest_off: bool = False


def _channels_check(request: NotificationRequest, version: Any) -> tuple[list[str], list[str]]:
    template = version.template
    available = version_channels(version=version)
    fallback = list(dict.fromkeys(request.fallback))
    # Without explicit channels: every channel of the template except the fallback ones.
    channels = list(dict.fromkeys(request.channels or [c for c in available if c not in fallback]))
    for name, wanted in (("channels", channels), ("fallback", fallback)):
        absent = [c for c in wanted if c not in available]
        if absent:
            raise InvalidInput(
                f"Template {template.key!r} has no variant for: {', '.join(absent)}.",
                fields={name: [f"no {c} variant in template {template.key!r}" for c in absent]},
            )
    overlap = [c for c in fallback if c in channels]
    if overlap:
        raise InvalidInput(
            f"Fallback channels are also requested channels: {', '.join(overlap)}.",
            fields={"fallback": [f"{c} is already in channels" for c in overlap]},
        )
    if not channels:
        raise InvalidInput(
            "No channel left to send on before the fallback.",
            fields={"channels": ["no channel to send on first: name some in `channels`"]},
        )
    return channels, fallback


def _holdout_check(request: NotificationRequest, version: Any, channels: list[str]) -> None:
    """A send-time A/B test (`best_time_holdout`) and a copy A/B test would both set each
    delivery's `variant`: one test at a time, on every channel the request may send on (its
    fallback channels too)."""
    if request.best_time_holdout is None:
        return
    tested = [c for c in version_labelled_channels(version=version) if c in channels]
    if tested:
        raise InvalidInput(
            f"Template {version.template.key!r} has an A/B test of its copy on: "
            f"{', '.join(tested)}; a send-time holdout cannot run beside it.",
            fields={
                "best_time_holdout": [
                    f"not with the labelled variants on {c} (one A/B test at a time)"
                    for c in tested
                ]
            },
        )


def request_check(client: ApiClient, request: NotificationRequest) -> Checked:
    """The checks that need no recipient: the template, its variables and channels. Run before
    the inline upsert, so that their 400 writes nothing and takes no row lock."""
    version = template_versions.current(client=client, key=request.template)
    if version is None:
        raise InvalidInput(
            f"Unknown template {request.template!r}.",
            fields={"template": [f"unknown template {request.template!r}"]},
        )
    if isinstance(request.digest, dict) and request.escalation:
        # Steps stand down when the notification is read; a digested item never is (the digest
        # goes out as its own notification), so the two asked together cannot both be honoured.
        raise InvalidInput(
            "A digest and escalation steps cannot be combined: a notification with escalation "
            "steps is sent on its own.",
            fields={"digest": ["not with `escalation` (drop one of them)"]},
        )
    digest, digest_off = digest_declared(template=version.template, requested=request.digest)
    reserved = sorted(DIGEST_VARIABLES & set(request.variables)) if digest is not None else []
    if reserved:
        # The digest's render supplies them; the request's would be replaced without a word.
        raise InvalidInput(
            f"Reserved for the digest: {', '.join(reserved)}.",
            fields={"variables": [f"{name!r} is set by the digest" for name in reserved]},
        )
    # A digest's render supplies `items` and `count`: not the caller's to give.
    exempt = DIGEST_VARIABLES if digest is not None else frozenset()
    missing = [n for n in version.variables if n not in request.variables and n not in exempt]
    if missing:
        raise InvalidInput(
            f"Missing template variables: {', '.join(missing)}.",
            fields={"variables": [f"missing variable {name!r}" for name in missing]},
        )
    channels, fallback = _channels_check(request, version)
    _holdout_check(request, version, [*channels, *fallback])
    escalation_check(
        steps=request.escalation,
        template=version.template,
        available=version_channels(version=version),
        channels=channels,
        fallback=fallback,
        send_at=request.send_at,
    )
    return Checked(version.template, version, channels, fallback, [], set(), [], digest, digest_off)


def recipients_check(client: ApiClient, request: NotificationRequest, first: Checked) -> Checked:
    """`first` (from `_request_check`) with the recipients, their suppressions and the unknown
    ids."""
    version, channels, fallback, digest = (
        first.version,
        first.channels,
        first.fallback,
        first.digest,
    )
    wanted_ids = list(dict.fromkeys(request.recipients))
    escalated = escalation_channels(request.escalation)
    # Suppressions (of the fallback and escalation channels too) come with the recipients.
    recipients, suppressed = recipients_for_sending(
        client=client, external_ids=wanted_ids, channels=[*channels, *fallback, *escalated]
    )
    found = {r.external_id for r in recipients}
    unknown = [r for r in wanted_ids if r not in found]
    if unknown and (request.strict or not recipients):
        raise InvalidInput(
            f"Unknown recipients: {', '.join(unknown[:10])}.",
            fields={"recipients": [f"unknown recipient {r!r}" for r in unknown[:50]]},
        )
    order = {ext: i for i, ext in enumerate(wanted_ids)}
    recipients.sort(key=lambda r: order[r.external_id])
    variants_render_check(
        version=version,
        channels=[*channels, *fallback, *escalated],
        variables=request.variables,
        digest=digest,
        samples=recipients,
    )
    return dataclasses.replace(first, recipients=recipients, suppressed=suppressed, unknown=unknown)


def variants_render_check(
    *,
    version: Any,
    channels: Sequence[str],
    variables: dict[str, Any],
    digest: DigestSpec | None,
    samples: Iterable[Recipient],
) -> None:
    """Too large, too slow or a broken subject is the caller's 400 now, not a dead letter
    later: one render per variant the samples' locales pick, with one of those recipients.
    When a digest applies, rendered as the digest of this one notification would be (`items`,
    `count`), and its key rendered with the first sample."""
    by_locale: dict[str, dict[str, object]] = {}
    first: Recipient | None = None
    for recipient in samples:
        first = first or recipient
        if recipient.locale not in by_locale:
            by_locale[recipient.locale] = recipient_context(recipient=recipient)
    if digest is not None and first is not None:
        digest_key(spec=digest, variables=variables, recipient=first)
        item = {**variables, "at": timezone.now().isoformat(), "notification_id": ""}
        variables = {**variables, "items": [item], "count": 1, "shown": 1}
    version_render_check(
        version=version, channels=channels, variables=variables, recipients=by_locale
    )
