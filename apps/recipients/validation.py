"""Field rules for recipients, shared by the API serializers and the admin forms."""

from __future__ import annotations

import functools
import re
import zoneinfo

import phonenumbers
from django.core.exceptions import ValidationError

# BCP 47 language tags as products use them: `en`, `pt-BR`, `zh-Hant-TW`.
LOCALE_RE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8}){0,3}$")
CATEGORY_RE = re.compile(r"^[a-zA-Z0-9_.:-]{1,50}$")


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(value: str) -> None:
    if value not in _timezones():
        raise ValidationError(f"{value!r} is not an IANA timezone (e.g. Europe/Lisbon).")


def validate_locale(value: str) -> None:
    if not LOCALE_RE.match(value):
        raise ValidationError(f"{value!r} is not a locale (e.g. en, pt-BR).")


def normalise_phone(value: str) -> str:
    """E.164 (`+14155552671`); blank stays blank (no phone)."""
    if value == "":
        return value
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError("Not a phone number in E.164 form (e.g. +14155552671).") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"{value!r} is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
