"""Content checks for template variants: every source parses and renders with sample values.

A template that passes here cannot crash a worker with a syntax error; a missing variable is
caught at the API by the notification request's own check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from apps.core.errors import InvalidInput
from notifier.rendering import TemplateError, render, variables_used

SOURCE_FIELDS = ("subject", "title", "body", "html")
SAMPLE_RECIPIENT = {"external_id": "sample", "name": "Sample", "locale": "en", "data": {}}


def _label(index: int, variant: Mapping[str, Any]) -> str:
    return f"variant {index} ({variant.get('channel')}/{variant.get('locale') or 'en'})"


def template_variants_check(*, variants: Sequence[Mapping[str, Any]]) -> None:
    """Raise InvalidInput naming the variant and field whose source does not parse or render."""
    errors: dict[str, dict[str, list[str]]] = {}
    messages: list[str] = []
    for index, variant in enumerate(variants):
        sources = {f: str(variant.get(f) or "") for f in SOURCE_FIELDS}
        for field, source in sources.items():
            try:
                names = variables_used([source])
                render(
                    **{field: source},
                    variables=dict.fromkeys(names, "sample"),
                    recipient=SAMPLE_RECIPIENT,
                )
            except TemplateError as exc:
                problem = f"does not parse: {exc}"
            except Exception as exc:  # any render-time failure comes from the author's source
                problem = f"does not render: {type(exc).__name__}: {exc}"
            else:
                continue
            errors.setdefault(str(index), {})[field] = [problem]
            messages.append(f"{_label(index, variant)} {field} {problem}")
    if errors:
        raise InvalidInput(messages[0], fields={"variants": errors})
