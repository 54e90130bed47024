"""Helpers of the admin tests."""

from __future__ import annotations

import json


def template_form(client_id: int, key: str, variants: object, **extra: str) -> dict[str, str]:
    return {
        "client": str(client_id),
        "key": key,
        "category": "orders",
        "default_priority": "normal",
        "variables": "[]",
        "variants": variants if isinstance(variants, str) else json.dumps(variants),
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        **extra,
    }
