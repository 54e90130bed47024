"""The preference centre's plain HTML form, read into the body PUT .../preferences takes.

The rules are the API's: the form's fields become that endpoint's JSON shape and go through its
serializer (PreferenceWriteSerializer) and service (preference_update); nothing is checked here
that the API does not check, and nothing the API checks is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from apps.recipients.api.serializers import (
    PreferenceWriteSerializer,
    RecipientWriteSerializer,
)
from apps.recipients.models import Preference, Recipient
from notifier.types import Channel

CHANNEL_LABELS: dict[str, Any] = {
    Channel.EMAIL: _("Email"),
    Channel.SMS: _("SMS"),
    Channel.PUSH: _("Push"),
    Channel.INAPP: _("In-app"),
}
# The cadences offered (any valid one the recipient already has is offered too).
CADENCES = [
    ("", _("As sent")),
    ("hourly", _("Hourly digest")),
    ("daily@09:00", _("Daily digest at 09:00")),
    ("daily@18:00", _("Daily digest at 18:00")),
    ("off", _("Never as a digest")),
]


@dataclass(frozen=True)
class Cell:
    channel: str
    label: str
    field: str  # the checkbox's value: `<channel>/<category>` (a category has no `/`)
    checked: bool


@dataclass(frozen=True)
class Row:
    category: str
    locked: bool
    cells: list[Cell]
    digest: str
    cadences: list[tuple[str, Any]]


def rows_for(*, categories: list[tuple[str, bool]], pref: Preference | None) -> list[Row]:
    """One row per category: a toggle per channel (checked: the recipient hears it there)."""
    opted = pref.categories if pref is not None else {}
    digest = pref.digest if pref is not None else {}
    rows = []
    for name, locked in categories:
        flags = opted.get(name, {})
        cells = [
            Cell(c, str(label), f"{c}/{name}", flags.get(c) is not False)
            for c, label in CHANNEL_LABELS.items()
        ]
        current = digest.get(name, "")
        cadences = list(CADENCES)
        if current and current not in dict(CADENCES):
            cadences.append((current, current))
        rows.append(Row(name, locked, cells, current, cadences))
    return rows


def changes_from(
    data: QueryDict, *, categories: list[tuple[str, bool]], pref: Preference | None
) -> dict[str, Any]:
    """The form as a PUT .../preferences body. Locked categories and categories the page did
    not show keep what they had; an unchecked toggle is an opt-out."""
    received = set(data.getlist("receive"))
    opted = {k: dict(v) for k, v in (pref.categories if pref is not None else {}).items()}
    digest = dict(pref.digest if pref is not None else {})
    for name, locked in categories:
        if locked:
            continue
        flags = {str(c): False for c in CHANNEL_LABELS if f"{c}/{name}" not in received}
        if flags:
            opted[name] = flags
        else:
            opted.pop(name, None)
        cadence = data.get(f"digest/{name}", "")
        if cadence:
            digest[name] = cadence
        else:
            digest.pop(name, None)
    start, end = data.get("quiet_start", "").strip(), data.get("quiet_end", "").strip()
    quiet = {"start": start, "end": end} if start or end else None
    return {"categories": opted, "digest": digest, "quiet_hours": quiet}


def profile_from(data: QueryDict, *, recipient: Recipient) -> dict[str, Any]:
    """The language chosen, as a PUT /recipients/{id} body (nothing when unchanged)."""
    language = data.get("language", "")
    return {"locale": language} if language and language != recipient.locale else {}


def validate(
    data: QueryDict,
    *,
    recipient: Recipient,
    categories: list[tuple[str, bool]],
    pref: Preference | None,
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(preference changes, profile changes, errors) through the API's own serializers."""
    prefs = PreferenceWriteSerializer.editing(
        pref, data=changes_from(data, categories=categories, pref=pref)
    )
    profile = RecipientWriteSerializer(data=profile_from(data, recipient=recipient))
    errors: list[str] = []
    for serializer in (prefs, profile):
        if not serializer.is_valid():
            errors.extend(_flatten(serializer.errors))
    return dict(prefs.validated_data or {}), dict(profile.validated_data or {}), errors


def languages(*, recipient: Recipient) -> list[tuple[str, str]]:
    """The page's languages, and the recipient's own locale when it is not one of them (so that
    saving the form leaves it as it was)."""
    choices = [(code, str(name)) for code, name in settings.LANGUAGES]
    if recipient.locale not in dict(choices):
        choices.insert(0, (recipient.locale, recipient.locale))
    return choices


def _flatten(errors: Any, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        out: list[str] = []
        for key, value in errors.items():
            label = key if key != "non_field_errors" else ""
            out.extend(_flatten(value, f"{prefix}{label}: " if label else prefix))
        return out
    if isinstance(errors, list):
        return [m for item in errors for m in _flatten(item, prefix)]
    return [f"{prefix}{errors}"]
