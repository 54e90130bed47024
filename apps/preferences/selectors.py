"""Reads for the preference centre: which categories a recipient can see and which are locked."""

from __future__ import annotations

from django.conf import settings
from django.utils.translation import get_supported_language_variant

from apps.recipients.models import Preference, Recipient
from apps.templates.models import Template
from notifier.types import Priority


def category_is_critical(*, category: str, priority: str = "") -> bool:
    """Whether an email of `category` sent at `priority` may carry no unsubscribe link: a
    category the service names critical (CRITICAL_CATEGORIES), or a `critical` send."""
    return priority == Priority.CRITICAL or category in settings.CRITICAL_CATEGORIES


def critical_categories(*, recipient: Recipient) -> set[str]:
    """The categories the recipient cannot leave: CRITICAL_CATEGORIES and the categories of
    the client's templates whose default priority is `critical`."""
    rows = Template.objects.filter(
        client_id=recipient.client_id, default_priority=Priority.CRITICAL
    ).values_list("category", flat=True)
    return set(settings.CRITICAL_CATEGORIES) | set(rows)


def preference_categories(
    *, recipient: Recipient, pref: Preference | None
) -> list[tuple[str, bool]]:
    """(category, locked) for every category the recipient can hear from, sorted: the
    client's templates' categories and any the preferences already name. Locked: critical
    (CRITICAL_CATEGORIES, or the category of a template whose default priority is critical)."""
    names = set(
        Template.objects.filter(client_id=recipient.client_id).values_list("category", flat=True)
    )
    critical = critical_categories(recipient=recipient)
    if pref is not None:
        names |= set(pref.categories) | set(pref.digest)
    return [(name, name in critical) for name in sorted(names)]


def page_language(*, recipient: Recipient) -> str:
    """The language of the pages for the recipient's locale (`de-AT` -> `de`), else the
    default."""
    try:
        return get_supported_language_variant(recipient.locale.lower())
    except LookupError:
        return str(settings.LANGUAGE_CODE)
