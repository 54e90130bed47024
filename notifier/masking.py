"""Masking of personal data for logs: `a***@example.com`, `***4321`."""

from __future__ import annotations

import re

EMAIL_RE = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*(?:@|%40)([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
# Not inside a longer word or identifier: a UUID's digit groups are not a phone number.
PHONE_RE = re.compile(r"(?<![\w.-])(?:\+|%2B)?\d[\d ()-]{6,}(\d{4})(?![\w-])")


def mask_address(value: str) -> str:
    """Mask an email address or phone number; device tokens keep only their last 4 characters."""
    if not value:
        return value
    if "@" in value:
        return mask_text(value)
    return "***" + value[-4:]


def mask_text(text: str) -> str:
    """Mask every email address and phone number inside free text."""
    text = EMAIL_RE.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    return PHONE_RE.sub(lambda m: f"***{m.group(1)}", text)
