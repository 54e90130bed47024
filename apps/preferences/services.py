"""Writes behind the hosted pages: an unsubscribe link used, the preference centre saved."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from apps.preferences.selectors import category_is_locked, preference_version
from apps.recipients.models import Preference, Recipient, RecipientEvent
from apps.recipients.services import (
    preference_unsubscribe,
    preference_update,
    recipient_event_emit,
    recipient_event_record,
    recipient_lock_live,
    recipient_profile_update,
)


class LockedCategory(Exception):
    """The link names a category a recipient cannot leave (critical)."""


class StalePreferences(Exception):
    """The preference centre's page was opened before the preferences last changed."""


def link_unsubscribe(
    *, recipient: Recipient, category: str, channel: str, source: str
) -> RecipientEvent | None:
    """Apply an unsubscribe link: the recipient leaves `category` on `channel`. None when it
    had already (links are idempotent); LockedCategory for a critical one."""
    if category_is_locked(category=category):
        raise LockedCategory(category)
    return preference_unsubscribe(
        recipient=recipient, category=category, channel=channel, source=source
    )


@transaction.atomic
def preference_centre_save(
    *,
    recipient: Recipient,
    changes: Mapping[str, Any],
    profile: Mapping[str, Any],
    version: str,
) -> Preference:
    """Save the preference centre's form: `changes` as PUT .../preferences validated them,
    `profile` (the language) as PUT /recipients/{id} did; one event in the timeline.
    RecipientGone (nothing written) when the recipient was erased after the link was checked;
    StalePreferences (nothing written) when they changed since the page showed `version` (the
    form replaces every category: saving it would undo the other change)."""
    locked = recipient_lock_live(recipient=recipient)
    current = Preference.objects.select_for_update().filter(recipient=locked).first()
    if preference_version(recipient=locked, pref=current) != version:
        raise StalePreferences
    pref = preference_update(recipient=recipient, changes=changes)
    if profile:
        recipient_profile_update(recipient=recipient, profile=profile)
    event = recipient_event_record(
        recipient=recipient, kind=RecipientEvent.Kind.PREFERENCES_UPDATED, source="preferences"
    )
    recipient_event_emit(event=event)
    return pref
