"""A recipient given by reference in another app's body (`recipient` / `recipients` of POST
/api/v1/notifications, `recipients` of POST /api/v1/topics/{key}/subscribers): an external id,
or an object that creates or updates the recipient in the same transaction (inline
recipients), validated as PUT /api/v1/recipients/{id}."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.core.fields import StrictCharField
from apps.recipients.api.serializers import RecipientWriteSerializer

EXTERNAL_ID_MAX = 200


def _printable(value: str) -> None:
    if not value.isprintable():
        raise serializers.ValidationError("Must be printable characters only.")


def _addressable(value: str) -> None:
    """A recipient created here must be reachable at /api/v1/recipients/{id}: a `/` (even
    sent as %2F, which the server decodes before routing) or an id of `.` or `..` (which HTTP
    clients fold into the path) would make one no request can read, update or erase."""
    if "/" in value or value in {".", ".."}:
        raise serializers.ValidationError(
            "Must not contain '/' or be '.' or '..': the recipient could not be addressed "
            "at /api/v1/recipients/{id}."
        )


class InlineRecipientSerializer(RecipientWriteSerializer):
    """A recipient given with the notification: `id` (its external id) and any profile fields
    of `PUT /api/v1/recipients/{id}`, validated the same way; fields not given keep their
    value. Fields it does not know are refused, so a misspelt one is not lost silently."""

    id = StrictCharField(max_length=EXTERNAL_ID_MAX, validators=[_printable, _addressable])

    def to_internal_value(self, data: Any) -> Any:
        unknown = (
            sorted(str(k) for k in data if k not in self.fields)
            if isinstance(data, Mapping)
            else []
        )
        if unknown:
            raise serializers.ValidationError({k: ["Unknown field."] for k in unknown})
        return super().to_internal_value(data)


def _inline_schema() -> dict[str, Any]:
    properties: dict[str, Any] = {
        "id": {
            "type": "string",
            "maxLength": EXTERNAL_ID_MAX,
            "pattern": r"^(?!\.\.?$)[^/]+$",
            "description": "External id (no '/', not '.' or '..': it must be addressable).",
        },
        "email": {"type": "string", "format": "email"},
        "phone": {"type": "string", "description": "E.164, e.g. +14155552671"},
        "locale": {"type": "string", "example": "pt-BR"},
        "timezone": {"type": "string", "example": "Europe/Lisbon"},
        "name": {"type": "string"},
        "data": {"type": "object", "additionalProperties": True},
    }
    return {
        "oneOf": [
            {"type": "string", "maxLength": EXTERNAL_ID_MAX, "description": "External id."},
            {
                "type": "object",
                "title": "InlineRecipient",
                "description": (
                    "Created, or updated with the fields given, in the request's "
                    "transaction (validated as PUT /api/v1/recipients/{id})."
                ),
                "properties": properties,
                "required": ["id"],
                "additionalProperties": False,
            },
        ]
    }


# A plain id: a string as before inline recipients (not strict), printable as an inline `id`.
PLAIN_ID = serializers.CharField(max_length=EXTERNAL_ID_MAX, validators=[_printable])


@extend_schema_field(_inline_schema())
class RecipientRefField(serializers.Field[Any, Any, Any, Any]):
    """An external id (a string, as before inline recipients) or an inline recipient object:
    returns the id, or {"id": ..., profile fields...}."""

    def to_internal_value(self, data: Any) -> str | dict[str, Any]:
        if isinstance(data, Mapping):
            inline = InlineRecipientSerializer(data=data)
            inline.is_valid(raise_exception=True)
            return dict(inline.validated_data)
        return str(PLAIN_ID.run_validation(data))

    def to_representation(self, value: Any) -> Any:
        return value


def recipients_split(
    refs: list[str | dict[str, Any]], *, name: str
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """(external ids in order, inline profiles by id). Raises a ValidationError naming the
    index when one id is given as two different objects."""
    ids: list[str] = []
    profiles: dict[str, dict[str, Any]] = {}
    for index, ref in enumerate(refs):
        if isinstance(ref, str):
            ids.append(ref)
            continue
        profile = {k: v for k, v in ref.items() if k != "id"}
        external_id = ref["id"]
        if external_id in profiles and profiles[external_id] != profile:
            raise serializers.ValidationError(
                {f"{name}[{index}].id": [f"{external_id!r} is given twice with different fields."]}
            )
        profiles[external_id] = profile
        ids.append(external_id)
    return ids, profiles


def errors_named(errors: dict[str, Any]) -> dict[str, Any]:
    """DRF's nested errors of `recipient` / `recipients` as one entry per field, named by
    index and field: {"recipients": {3: {"email": [...]}}} -> {"recipients[3].email": [...]}."""
    named: dict[str, Any] = {}
    for key, detail in errors.items():
        if key == "recipients" and isinstance(detail, Mapping):
            for index, inner in detail.items():
                named.update(_fields(f"recipients[{index}]", inner))
        elif key == "recipient" and isinstance(detail, Mapping):
            named.update(_fields("recipient", detail))
        else:
            named[key] = detail
    return named


def _fields(prefix: str, detail: Any) -> dict[str, Any]:
    if isinstance(detail, Mapping):
        return {f"{prefix}.{field}": messages for field, messages in detail.items()}
    return {prefix: detail}
