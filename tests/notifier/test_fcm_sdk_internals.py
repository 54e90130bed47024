"""firebase-admin has no public base-URL or retry option; we reach into private attributes in
one place (`messaging_service_configure`). These tests fail loudly if an SDK upgrade moves them.
"""

from __future__ import annotations

import firebase_admin
from firebase_admin import messaging

from notifier.providers.fcm import NO_RETRIES, AnonymousCredential, messaging_service_configure


def test_messaging_service_still_has_the_private_attributes_we_set() -> None:
    app = firebase_admin.initialize_app(
        AnonymousCredential(), {"projectId": "p"}, name="internals-check"
    )
    try:
        service = messaging._get_messaging_service(app)
        assert service._fcm_url == "https://fcm.googleapis.com/v1/projects/p/messages:send", (
            "firebase-admin changed _fcm_url: update notifier.providers.fcm"
        )
        assert hasattr(service._client, "session"), "firebase-admin moved its HTTP session"

        messaging_service_configure(app, fcm_url="http://127.0.0.1:9/v1/projects/p/messages:send")

        assert service._fcm_url == "http://127.0.0.1:9/v1/projects/p/messages:send"
        for url in ("http://127.0.0.1:9/x", "https://fcm.googleapis.com/v1/x"):
            assert service._client.session.get_adapter(url).max_retries is NO_RETRIES
    finally:
        firebase_admin.delete_app(app)
