"""Recipient tokens name no guessable id, requests made with them are rate-limited per
recipient, and a recipient's timezone is an IANA zone."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core import signing
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from apps.recipients.models import Recipient
from apps.recipients.tokens import SALT, recipient_token_check, recipient_token_mint
from tests.apps.recipients.test_recipients_api import assert_error_shape
from tests.factories import RecipientFactory

PREFS = "/api/v1/recipients/{}/preferences"
URL = "/api/v1/recipients/{}"


def as_recipient(recipient: Recipient) -> APIClient:
    app = APIClient()
    token = recipient_token_mint(recipient=recipient, ttl_seconds=3600).token
    app.credentials(HTTP_AUTHORIZATION=f"Recipient {token}")
    return app


# --- tokens ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_token_does_not_carry_the_sequential_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two records that differ only in their sequential id, forced far apart, get the same
    signed payload (the token's part before its signing time and signature), which names the
    public id and the expiry only."""
    now = timezone.now()
    monkeypatch.setattr(timezone, "now", lambda: now)
    first = RecipientFactory(pk=7)
    public_id, client, external_id = first.public_id, first.client, first.external_id
    token = recipient_token_mint(recipient=first).token
    first.delete()
    second = RecipientFactory(
        pk=7_000_000_001, public_id=public_id, client=client, external_id=external_id
    )

    again = recipient_token_mint(recipient=second).token

    assert again.rsplit(":", 2)[0] == token.rsplit(":", 2)[0]
    expires = int(now.timestamp()) + settings.RECIPIENT_TOKEN_TTL_SECONDS
    assert signing.loads(token, salt=SALT) == {"r": public_id.hex, "e": expires}


@pytest.mark.django_db
def test_recipients_get_distinct_public_ids() -> None:
    ids = {RecipientFactory().public_id for _ in range(5)}

    assert len(ids) == 5


@pytest.mark.django_db
def test_a_token_with_a_sequential_id_is_refused() -> None:
    """What tokens carried before: signed, unexpired, naming the row id. Now it is a 401."""
    recipient = RecipientFactory(external_id="user-1")
    old = signing.dumps({"r": recipient.pk, "e": int(timezone.now().timestamp()) + 3600}, salt=SALT)
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Recipient {old}")

    response = app.get(PREFS.format("user-1"))

    assert response.status_code == 401
    assert_error_shape(response.json(), "authentication_failed")


@pytest.mark.django_db
def test_checking_a_token_tells_its_expiry() -> None:
    recipient = RecipientFactory()
    minted = recipient_token_mint(recipient=recipient, ttl_seconds=120)

    checked = recipient_token_check(minted.token)

    assert checked is not None
    assert checked.recipient == recipient
    assert checked.expires_at == minted.expires_at.replace(microsecond=0)
    assert checked.expires_at > timezone.now() + dt.timedelta(seconds=110)


@pytest.mark.django_db
def test_an_erased_recipients_token_is_refused() -> None:
    from apps.recipients.services import recipient_erase

    recipient = RecipientFactory()
    token = recipient_token_mint(recipient=recipient).token
    recipient_erase(recipient=recipient)

    assert recipient_token_check(token) is None


# --- rate limit ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_recipient_token_sent_as_bearer_is_a_401_naming_the_recipient_scheme() -> None:
    recipient = RecipientFactory(external_id="user-1")
    token = recipient_token_mint(recipient=recipient, ttl_seconds=3600).token
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = app.get("/api/v1/inbox/unread-count")

    assert response.status_code == 401
    assert_error_shape(response.json(), "authentication_failed")
    assert "`Authorization: Recipient <token>`" in response.json()["message"]
    assert response["WWW-Authenticate"] == "Bearer"
    # The same token with the right scheme is accepted.
    app.credentials(HTTP_AUTHORIZATION=f"Recipient {token}")
    assert app.get("/api/v1/inbox/unread-count").json() == {"count": 0}


@pytest.mark.django_db
def test_a_bearer_value_that_is_no_token_gets_no_recipient_hint() -> None:
    app = APIClient()
    app.credentials(HTTP_AUTHORIZATION="Bearer not-a-key")

    response = app.get("/api/v1/inbox/unread-count")

    assert response.status_code == 401
    assert response.json()["message"] == "Invalid API key."


@pytest.fixture
def recipient_rate_of_two() -> Iterator[None]:
    rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "recipient": "2/min"}
    with override_settings(
        REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    ):
        yield


@pytest.mark.django_db
def test_recipient_requests_are_rate_limited_per_recipient(recipient_rate_of_two: None) -> None:
    ada = RecipientFactory(external_id="ada")
    bob = RecipientFactory(client=ada.client, external_id="bob")
    ada_app, bob_app = as_recipient(ada), as_recipient(bob)

    statuses = [ada_app.get(PREFS.format("ada")).status_code for _ in range(2)]
    refused = ada_app.put(PREFS.format("ada"), {"daily_limit": 3}, format="json")

    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert_error_shape(refused.json(), "throttled")
    assert 1 <= int(refused["Retry-After"]) <= 60
    assert not hasattr(ada, "preference") or ada.preference.daily_limit != 3
    # Another recipient of the same client has a bucket of its own.
    assert bob_app.get(PREFS.format("bob")).status_code == 200


@pytest.mark.django_db
def test_a_new_token_does_not_reset_the_bucket(recipient_rate_of_two: None) -> None:
    ada = RecipientFactory(external_id="ada")
    for _ in range(2):
        as_recipient(ada).get(PREFS.format("ada"))

    response = as_recipient(ada).get(PREFS.format("ada"))

    assert response.status_code == 429


# --- timezone --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "zone", ["localtime", "posixrules", "Factory", "posix/Europe/Lisbon", "right/UTC", "utc"]
)
def test_a_timezone_that_is_not_an_iana_zone_is_a_400(api: APIClient, zone: str) -> None:
    response = api.put(URL.format("user-1"), {"timezone": zone}, format="json")

    assert response.status_code == 400
    assert_error_shape(response.json(), "invalid")
    assert set(response.json()["fields"]) == {"timezone"}
    assert Recipient.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize("zone", ["Europe/Lisbon", "America/Argentina/Buenos_Aires", "UTC"])
def test_iana_zones_are_accepted(api: APIClient, zone: str) -> None:
    response = api.put(URL.format("user-1"), {"timezone": zone}, format="json")

    assert response.status_code == 201
    assert Recipient.objects.get().timezone == zone
