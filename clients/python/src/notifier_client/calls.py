"""Every API call the clients make, written once: each function returns the `Call` (request and
reader) that NotifierClient runs at once and AsyncNotifierClient awaits. Paths, bodies and
answers follow the service's OpenAPI schema (`/api/schema/`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypedDict

from typing_extensions import Unpack

from notifier_client._core import (
    JSON,
    Call,
    Page,
    body,
    params,
    parse_json,
    parse_none,
    parse_page,
    segment,
)

Channel = Literal["email", "sms", "push", "inapp"]
Priority = Literal["critical", "high", "normal", "low"]
# A recipient by external id, or inline `{"id", "email", "phone", "locale", "timezone", "name",
# "data"}` (created or updated with the notification).
RecipientRef = str | Mapping[str, Any]


class SendOptions(TypedDict, total=False):
    """What `send` and `send_bulk` take besides the template and whom to."""

    variables: Mapping[str, Any]
    channels: Sequence[Channel]
    priority: Priority
    category: str
    send_at: datetime | str  # an aware datetime, an ISO 8601 string, or "best_time"
    fallback: Sequence[Channel]
    strict: bool
    throttle: Mapping[str, Any] | Literal[False]
    digest: Mapping[str, Any] | Literal[False]
    escalation: Sequence[Mapping[str, Any]]
    idempotency_key: str  # default: a new uuid4 per call, the same on each of its retries


def _notification(extra: JSON, options: SendOptions) -> Call[JSON]:
    fields: dict[str, Any] = dict(options)
    key = fields.pop("idempotency_key", None)
    send_at = fields.get("send_at")
    if isinstance(send_at, datetime):
        if send_at.tzinfo is None:
            raise ValueError("send_at must be timezone-aware (the API wants an offset)")
        fields["send_at"] = send_at.isoformat()
    for name in ("channels", "fallback", "escalation"):
        if name in fields:
            fields[name] = list(fields[name])
    # The one POST the service deduplicates (by this key): safe to retry after a lost answer.
    return Call(
        "POST",
        "/notifications",
        parse_json,
        json={**extra, **fields},
        idempotency_key=key or str(uuid.uuid4()),
        idempotent=True,
    )


def send(
    template: str,
    *,
    recipient: RecipientRef | None = None,
    topic: str | None = None,
    exclude: Sequence[str] | None = None,
    **options: Unpack[SendOptions],
) -> Call[JSON]:
    """POST /notifications to one `recipient`, or to every subscriber of `topic` (but
    `exclude`). Answers 202 `{"id", "status", "deliveries": [...]}` (a topic: fanned out later)."""
    if (recipient is None) == (topic is None):
        raise ValueError("give exactly one of recipient or topic (send_bulk for a list)")
    extra = body(template=template, recipient=recipient, topic=topic)
    if exclude is not None:
        extra["exclude"] = list(exclude)
    return _notification(extra, options)


def send_bulk(
    template: str, recipients: Sequence[RecipientRef], **options: Unpack[SendOptions]
) -> Call[JSON]:
    """POST /notifications to `recipients` (up to 1000; unknown ids are skipped unless
    `strict`). Deliveries may be omitted from the answer: fetch them with list_deliveries."""
    return _notification({"template": template, "recipients": list(recipients)}, options)


def get_notification(notification_id: str) -> Call[JSON]:
    """The notification with each delivery, its attempts and timeline."""
    return Call("GET", f"/notifications/{segment(notification_id)}", parse_json)


def list_notifications(
    *,
    recipient: str | None = None,
    status: str | None = None,
    channel: Channel | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[Page[JSON]]:
    query = params(recipient=recipient, status=status, channel=channel, limit=limit, cursor=cursor)
    return Call("GET", "/notifications", parse_page, params=query)


def list_deliveries(
    notification_id: str, *, limit: int | None = None, cursor: str | None = None
) -> Call[Page[JSON]]:
    path = f"/notifications/{segment(notification_id)}/deliveries"
    return Call("GET", path, parse_page, params=params(limit=limit, cursor=cursor))


def cancel_notification(notification_id: str) -> Call[JSON]:
    """Cancels the deliveries not yet sent; answers the notification. Cancelling again changes
    nothing more, so a lost answer is retried."""
    path = f"/notifications/{segment(notification_id)}/cancel"
    return Call("POST", path, parse_json, idempotent=True)


def upsert_recipient(
    external_id: str,
    *,
    email: str | None = None,
    phone: str | None = None,
    locale: str | None = None,
    timezone: str | None = None,
    name: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> Call[JSON]:
    """PUT /recipients/{id}: created, or updated with the fields given."""
    fields = body(email=email, phone=phone, locale=locale, timezone=timezone, name=name, data=data)
    return Call("PUT", f"/recipients/{segment(external_id)}", parse_json, json=fields)


def get_recipient(external_id: str) -> Call[JSON]:
    return Call("GET", f"/recipients/{segment(external_id)}", parse_json)


def erase_recipient(external_id: str) -> Call[None]:
    """DELETE /recipients/{id}: erases personal data, anonymises delivery history."""
    return Call("DELETE", f"/recipients/{segment(external_id)}", parse_none)


def recipient_token(external_id: str, *, ttl_seconds: int | None = None) -> Call[JSON]:
    """A recipient token for end-user apps (inbox, preferences, devices): `{"token",
    "expires_at"}`."""
    path = f"/recipients/{segment(external_id)}/token"
    return Call("POST", path, parse_json, json=body(ttl_seconds=ttl_seconds))


def get_preferences(external_id: str) -> Call[JSON]:
    return Call("GET", f"/recipients/{segment(external_id)}/preferences", parse_json)


def set_preferences(
    external_id: str,
    *,
    channels: Mapping[str, bool] | None = None,
    categories: Mapping[str, Mapping[str, bool]] | None = None,
    quiet_hours: Mapping[str, str] | None = None,
    daily_limit: int | None = None,
    digest: Mapping[str, str] | None = None,
) -> Call[JSON]:
    """PUT /recipients/{id}/preferences, e.g. `categories={"marketing": {"email": False}}`."""
    fields = body(
        channels=channels,
        categories=categories,
        quiet_hours=quiet_hours,
        daily_limit=daily_limit,
        digest=digest,
    )
    path = f"/recipients/{segment(external_id)}/preferences"
    return Call("PUT", path, parse_json, json=fields)


def preferences_link(external_id: str) -> Call[JSON]:
    """The recipient's hosted preference centre: `{"url", "expires_at"}` (changes nothing)."""
    path = f"/recipients/{segment(external_id)}/preferences-link"
    return Call("POST", path, parse_json, idempotent=True)


def register_device(
    external_id: str, token: str, platform: Literal["ios", "android", "web"]
) -> Call[JSON]:
    """Idempotent on `token` (re-registering moves it to this recipient)."""
    path = f"/recipients/{segment(external_id)}/devices"
    fields = {"token": token, "platform": platform}
    return Call("POST", path, parse_json, json=fields, idempotent=True)


def remove_device(external_id: str, token: str) -> Call[None]:
    path = f"/recipients/{segment(external_id)}/devices/{segment(token)}"
    return Call("DELETE", path, parse_none)


def put_topic(key: str, *, name: str | None = None, description: str | None = None) -> Call[JSON]:
    """PUT /topics/{key}: created, or updated with the fields given."""
    fields = body(name=name, description=description)
    return Call("PUT", f"/topics/{segment(key)}", parse_json, json=fields)


def get_topic(key: str) -> Call[JSON]:
    return Call("GET", f"/topics/{segment(key)}", parse_json)


def delete_topic(key: str) -> Call[None]:
    return Call("DELETE", f"/topics/{segment(key)}", parse_none)


def list_topics(*, limit: int | None = None, cursor: str | None = None) -> Call[Page[JSON]]:
    return Call("GET", "/topics", parse_page, params=params(limit=limit, cursor=cursor))


def add_subscribers(key: str, recipients: Sequence[RecipientRef]) -> Call[JSON]:
    """Answers `{"topic", "added", "subscribers"}`."""
    path = f"/topics/{segment(key)}/subscribers"
    return Call("POST", path, parse_json, json={"recipients": list(recipients)})


def remove_subscribers(key: str, recipients: Sequence[str]) -> Call[JSON]:
    """Answers `{"topic", "removed", "subscribers"}`."""
    path = f"/topics/{segment(key)}/subscribers"
    return Call("DELETE", path, parse_json, json={"recipients": list(recipients)})


def list_subscribers(
    key: str, *, limit: int | None = None, cursor: str | None = None
) -> Call[Page[JSON]]:
    path = f"/topics/{segment(key)}/subscribers"
    return Call("GET", path, parse_page, params=params(limit=limit, cursor=cursor))


def list_dead_letters(
    *,
    channel: Channel | None = None,
    reason: str | None = None,
    replayed: bool | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[Page[JSON]]:
    """Dead letters (ops keys only: else PermissionDeniedError)."""
    query = params(channel=channel, reason=reason, replayed=replayed, limit=limit, cursor=cursor)
    return Call("GET", "/dead-letters", parse_page, params=query)


def replay_dead_letter(dead_letter_id: int | str) -> Call[JSON]:
    """Re-queues the delivery for a fresh series of attempts; answers the dead letter."""
    return Call("POST", f"/dead-letters/{segment(str(dead_letter_id))}/replay", parse_json)


def replay_dead_letters(
    *, ids: Sequence[int] | None = None, channel: Channel | None = None
) -> Call[JSON]:
    """Replays by `ids` or every unreplayed one of `channel`: `{"replayed", "ids",
    "not_replayed"}`."""
    if (ids is None) == (channel is None):
        raise ValueError("give exactly one of ids or channel")
    fields = body(ids=None if ids is None else list(ids), channel=channel)
    return Call("POST", "/dead-letters/replay", parse_json, json=fields)
