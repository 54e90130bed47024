"""Field rules for recipients, shared by the API serializers and the admin forms."""

from __future__ import annotations

import functools
import re
import zoneinfo

import phonenumbers
from django.core.exceptions import ValidationError

# Shared with apps.templates: the foundation's (re-exported for this app's callers).
from apps.core.validation import CATEGORY_RE as CATEGORY_RE
from apps.core.validation import LOCALE_RE as LOCALE_RE
from apps.core.validation import validate_locale as validate_locale

# Push tokens: FCM/APNs tokens are 64-250 characters, web push endpoints (URLs) a few hundred.
# 2,048 visible ASCII characters is room to spare and, with the client id, stays well under
# PostgreSQL's btree row limit (2,704 bytes) whatever the characters.
DEVICE_TOKEN_MAX = 2048
DEVICE_TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")
# Names the zoneinfo directory can hold that are not IANA zones a person lives in: the host's
# own zone (a symlink to /etc/localtime), tzcode's template and IANA's "zone unknown".
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@functools.cache
def _timezones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) - NOT_ZONES


def validate_timezone(value: str) -> None:
    if value not in _timezones():
        raise ValidationError(f"{value!r} is not an IANA timezone (e.g. Europe/Lisbon).")


def validate_device_token(value: str) -> None:
    if len(value) > DEVICE_TOKEN_MAX or not DEVICE_TOKEN_RE.match(value):
        raise ValidationError(
            f"A device token is 1 to {DEVICE_TOKEN_MAX} visible ASCII characters "
            "(no spaces or line breaks)."
        )


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
