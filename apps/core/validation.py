"""Field rules more than one app checks (templates and recipients both take locales and
categories), so they live in the foundation."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError

# BCP 47 language tags as products use them: `en`, `pt-BR`, `zh-Hant-TW`.
LOCALE_RE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8}){0,3}$")
CATEGORY_RE = re.compile(r"^[a-zA-Z0-9_.:-]{1,50}$")
# PostgreSQL's bigint: the largest id (inbox messages, dead letters) a path or body may name.
BIGINT_MAX = 2**63 - 1


def validate_category(value: str) -> None:
    # fullmatch: `$` would let a name end in "\n".
    if not CATEGORY_RE.fullmatch(value):
        raise ValidationError("Letters, digits and _.:- only (at most 50).")


def validate_locale(value: str) -> None:
    if not LOCALE_RE.match(value):
        raise ValidationError(f"{value!r} is not a locale (e.g. en, pt-BR).")
