"""Reads for the preference centre: which categories a recipient can see and which are locked."""

from __future__ import annotations

import hashlib
import json

from django.conf import settings
from django.utils.translation import get_supported_language_variant

from apps.recipients.models import Preference, Recipient
from apps.templates.models import Template
from notifier.types import Priority


def category_is_locked(*, category: str) -> bool:
    """Whether recipients cannot leave `category`: it is in CRITICAL_CATEGORIES. The one rule
    for the mail headers, the unsubscribe link and the preference centre alike."""
    return category in settings.CRITICAL_CATEGORIES


def send_is_unsubscribable(*, category: str, priority: str) -> bool:
    """Whether one send may carry an unsubscribe header: its category is not locked and the send
    is not `critical` (a critical send of an open category still carries none, per send)."""
    return priority != Priority.CRITICAL and not category_is_locked(category=category)


def preference_categories(
    *, recipient: Recipient, pref: Preference | None
) -> list[tuple[str, bool]]:
    """(category, locked) for every category the recipient can hear from, sorted: the
    client's templates' categories and any the preferences already name (category_is_locked)."""
    names = set(
        Template.objects.filter(client_id=recipient.client_id).values_list("category", flat=True)
    )
    if pref is not None:
        names |= set(pref.categories) | set(pref.digest)
    return [(name, category_is_locked(category=name)) for name in sorted(names)]


def preference_version(*, recipient: Recipient, pref: Preference | None) -> str:
    """A fingerprint of what the preference centre shows and saves (the preferences and the
    locale): the page carries it, a save from a page that no longer matches is refused."""
    state: list[object] = [recipient.locale]
    if pref is not None:
        state += [
            pref.channels,
            pref.categories,
            str(pref.quiet_start),
            str(pref.quiet_end),
            pref.daily_limit,
            pref.digest,
        ]
    text = json.dumps(state, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def page_language(*, recipient: Recipient) -> str:
    """The language of the pages for the recipient's locale (`de-AT` -> `de`), else the
    default."""
    try:
        return get_supported_language_variant(recipient.locale.lower())
    except LookupError:
        return str(settings.LANGUAGE_CODE)
