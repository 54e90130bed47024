"""The pages a recipient reaches from an email: the unsubscribe link and the preference centre.

No login: the signed token in the path is the credential (apps/preferences/tokens.py). Pages
are in the recipient's language (their locale, or the one they chose here).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.preferences import forms
from apps.preferences.selectors import (
    category_is_locked,
    page_language,
    preference_categories,
    preference_version,
)
from apps.preferences.services import (
    LockedCategory,
    StalePreferences,
    link_unsubscribe,
    preference_centre_save,
)
from apps.preferences.tokens import (
    preferences_check,
    unsubscribe_check,
    unsubscribe_page_preferences_url,
)
from apps.recipients.models import Preference, Recipient
from apps.recipients.selectors import recipient_preference
from apps.recipients.services import RecipientGone

STALE_MESSAGE = _(
    "Your preferences changed since this page was opened (in another tab, or by the service). "
    "The page now shows them: review and save again."
)


def _invalid_link(request: HttpRequest) -> HttpResponse:
    # A tampered, truncated or expired link, or one for an erased recipient: all look alike.
    return render(request, "preferences/invalid.html", status=404)


# RFC 8058: the one-click POST comes from the mail provider (Gmail, Yahoo), not from a page
# of ours, and carries no cookie and no CSRF token; the signed token in the URL is what
# authorises it. The worst a forged POST can do is what the link's holder may do anyway:
# unsubscribe that one recipient from that one category and channel.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET: a page confirming the unsubscribe; POST (one-click or the page's button): done, 200,
    no redirect, whatever the state before (idempotent)."""
    scope = unsubscribe_check(token)
    if scope is None:
        with translation.override(None):
            return _invalid_link(request)
    recipient = scope.recipient
    with translation.override(page_language(recipient=recipient)):
        context = {
            "category": scope.category,
            "channel": forms.CHANNEL_LABELS.get(scope.channel, scope.channel),
            # None once the email's own preference link has expired: the template drops the link.
            "preferences_url": unsubscribe_page_preferences_url(scope),
            "language": translation.get_language(),
        }
        if request.method == "GET":
            if category_is_locked(category=scope.category):  # no button that could only fail
                return render(request, "preferences/locked.html", context, status=400)
            return render(request, "preferences/unsubscribe.html", context)
        source = "one-click" if request.POST.get("List-Unsubscribe") == "One-Click" else "link"
        try:
            link_unsubscribe(
                recipient=recipient,
                category=scope.category,
                channel=scope.channel,
                source=source,
            )
        except LockedCategory:
            return render(request, "preferences/locked.html", context, status=400)
        except RecipientGone:  # erased after the link was checked
            return _invalid_link(request)
        return render(request, "preferences/unsubscribed.html", context)


@never_cache
@require_http_methods(["GET", "POST"])
def preference_centre(request: HttpRequest, token: str) -> HttpResponse:
    """The recipient's preferences as a form (no JavaScript needed), saved by the same rules as
    PUT /api/v1/recipients/{id}/preferences."""
    scope = preferences_check(token)
    if scope is None:
        with translation.override(None):
            return _invalid_link(request)
    recipient = scope.recipient
    # The serializers' messages too are in the page's language: validate inside the override.
    with translation.override(page_language(recipient=recipient)):
        pref = recipient_preference(recipient=recipient)
        errors: list[str] = []
        status = 200
        if request.method == "POST":
            categories = preference_categories(recipient=recipient, pref=pref)
            changes, profile, errors = forms.validate(
                request.POST, recipient=recipient, categories=categories, pref=pref
            )
            if errors:
                return _centre_page(
                    request, recipient=recipient, pref=pref, errors=errors, status=400
                )
            try:
                preference_centre_save(
                    recipient=recipient,
                    changes=changes,
                    profile=profile,
                    version=request.POST.get("version", ""),
                )
            except RecipientGone:  # erased after the link was checked
                with translation.override(None):
                    return _invalid_link(request)
            except StalePreferences:
                # Show what is stored now (the page's toggles would undo the other change).
                recipient.refresh_from_db()
                pref = recipient_preference(recipient=recipient)
                errors, status = [str(STALE_MESSAGE)], 409
            else:
                return redirect(f"{request.path}?saved=1", permanent=False)
        return _centre_page(request, recipient=recipient, pref=pref, errors=errors, status=status)


def _centre_page(
    request: HttpRequest,
    *,
    recipient: Recipient,
    pref: Preference | None,
    errors: list[str],
    status: int,
) -> HttpResponse:
    quiet = (pref.quiet_start, pref.quiet_end) if pref is not None else (None, None)
    categories = preference_categories(recipient=recipient, pref=pref)
    context = {
        "recipient": recipient,
        "rows": forms.rows_for(categories=categories, pref=pref),
        "channels": list(forms.CHANNEL_LABELS.values()),
        "quiet_start": quiet[0].strftime("%H:%M") if quiet[0] else "",
        "quiet_end": quiet[1].strftime("%H:%M") if quiet[1] else "",
        "languages": forms.languages(recipient=recipient),
        "errors": [str(e) for e in errors],
        "version": preference_version(recipient=recipient, pref=pref),
        "saved": request.GET.get("saved") == "1" and not errors,
        "language": translation.get_language(),
    }
    return render(request, "preferences/centre.html", context, status=status)
