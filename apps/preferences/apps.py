from __future__ import annotations

from django.apps import AppConfig


class PreferencesConfig(AppConfig):
    """The pages recipients reach from an email: one-click unsubscribe (RFC 8058) and the
    hosted preference centre, with the signed links to them."""

    name = "apps.preferences"
    label = "preferences"
