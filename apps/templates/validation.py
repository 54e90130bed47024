"""Content checks for template variants: every source parses and renders with sample values.

A template that passes here cannot crash a worker with a syntax error, uses no forbidden tag,
stays within its channel's render limits with sample values and has an email subject without
line breaks; a missing variable, or variables that make it too large, are caught at the API by
the notification request's own test render (apps/deliveries/request_checks.py), which skips
the render of a variant whose size it can add up without one (`render_check`,
notifier/rendering.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from apps.core.errors import InvalidInput
from apps.templates.limits import render_limits
from apps.templates.models import TemplateVariant, TemplateVersion
from apps.templates.selectors import variant_group
from notifier.channels import spec
from notifier.rendering import (
    Rendered,
    RenderLimitExceeded,
    SubjectLineBreak,
    TemplateError,
    has_line_break,
    render,
    render_check,
    required_variables,
)

SOURCE_FIELDS = ("subject", "title", "body", "html")
SAMPLE_RECIPIENT = {"external_id": "sample", "name": "Sample", "locale": "en", "data": {}}


def _sample_render(field: str, source: str, *, channel: str) -> Rendered:
    """Render one part with every variable set to a sample; a failure that a numeric sample
    avoids (`ljust:width` with a word for `width`) is the sample's, not the source's."""
    names = required_variables([source])
    limits = render_limits(channel=channel)
    try:
        return render(
            **{field: source},
            variables=dict.fromkeys(names, "sample"),
            recipient=SAMPLE_RECIPIENT,
            limits=limits,
        )
    except RenderLimitExceeded:
        raise
    except Exception:
        return render(
            **{field: source},
            variables=dict.fromkeys(names, "1"),
            recipient=SAMPLE_RECIPIENT,
            limits=limits,
        )


def _label(index: int, variant: Mapping[str, Any]) -> str:
    tag = f" {variant['label']}" if variant.get("label") else ""
    return f"variant {index} ({variant.get('channel')}/{variant.get('locale') or 'en'}{tag})"


# Delivery.variant of a send-time test's arms (apps/deliveries/best_time.py SEND_TIME_ARMS):
# a copy label of the same name would merge the two tests in the analytics.
RESERVED_LABELS = frozenset({"best_time", "immediate"})


def variant_labels_check(*, variants: Sequence[Mapping[str, Any]]) -> None:
    """The A/B rules: siblings (same channel and locale) each carry a distinct non-empty label
    (a variant without siblings may have none); weights are integers >= 0 with at least one > 0
    per channel and locale. Raise InvalidInput naming the variant and field."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, variant in enumerate(variants):
        pair = (str(variant.get("channel")), str(variant.get("locale") or "en"))
        groups.setdefault(pair, []).append(index)
    for (channel, locale), indexes in groups.items():
        seen: set[str] = set()
        for index in indexes:
            variant = variants[index]
            label = str(variant.get("label") or "")
            weight = variant.get("weight", 1)
            problem = field = ""
            if len(indexes) > 1 and not label:
                siblings = f"{channel}/{locale} has {len(indexes)} variants (an A/B test)"
                field, problem = "label", f"needs a label: {siblings}"
            elif label in RESERVED_LABELS:
                field, problem = "label", f"{label!r} is reserved (a send-time test's arm)"
            elif label and label in seen:
                field, problem = "label", f"repeats label {label!r} within {channel}/{locale}"
            elif isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                field, problem = "weight", "must be an integer >= 0"
            if problem:
                raise InvalidInput(
                    f"{_label(index, variant)} {field} {problem}.",
                    fields={"variants": {str(index): {field: [problem]}}},
                )
            seen.add(label)
        if not any(variants[i].get("weight", 1) > 0 for i in indexes):
            problem = f"at least one {channel}/{locale} variant needs a weight above 0"
            raise InvalidInput(
                f"{problem.capitalize()}.",
                fields={"variants": {str(indexes[0]): {"weight": [problem]}}},
            )


def template_variants_check(*, variants: Sequence[Mapping[str, Any]]) -> None:
    """Raise InvalidInput naming the variant and field whose source does not parse or render,
    or whose A/B label or weight breaks the rules (variant_labels_check)."""
    variant_labels_check(variants=variants)
    errors: dict[str, dict[str, list[str]]] = {}
    messages: list[str] = []
    for index, variant in enumerate(variants):
        sources = {f: str(variant.get(f) or "") for f in SOURCE_FIELDS}
        for field, source in sources.items():
            try:
                rendered = _sample_render(field, source, channel=str(variant.get("channel")))
            except TemplateError as exc:
                problem = f"does not parse: {exc}"
            except RenderLimitExceeded as exc:
                problem = f"exceeds the render limits: {exc}"
            except Exception as exc:  # any render-time failure comes from the author's source
                problem = f"does not render: {type(exc).__name__}: {exc}"
            else:
                if not (field == "subject" and has_line_break(rendered.subject)):
                    continue
                problem = "contains a line break (CR or LF)"
            errors.setdefault(str(index), {})[field] = [problem]
            messages.append(f"{_label(index, variant)} {field} {problem}")
    if errors:
        raise InvalidInput(messages[0], fields={"variants": errors})


def version_render_check(
    *,
    version: TemplateVersion,
    channels: Sequence[str],
    variables: Mapping[str, Any],
    recipients: Mapping[str, Mapping[str, Any]],
) -> None:
    """Render what the deliveries will render (each channel's variant for each recipient locale,
    `recipients` maps a locale to one recipient's template context) within the channel's
    limits; raise InvalidInput naming `variables` when it fails or a subject breaks a line."""
    seen: set[int] = set()
    for channel in channels:
        for locale, recipient in recipients.items():
            # Every sibling of an A/B test: any of them may be the one a recipient gets.
            for variant in variant_group(version=version, channel=channel, locale=locale):
                if variant.pk in seen:
                    continue
                seen.add(variant.pk)
                _variant_render_check(
                    version=version, variant=variant, variables=variables, recipient=recipient
                )


def _variant_render_check(
    *,
    version: TemplateVersion,
    variant: TemplateVariant,
    variables: Mapping[str, Any],
    recipient: Mapping[str, Any],
) -> None:
    channel = variant.channel
    html = variant.html if spec(channel).html else ""
    parts = {"subject": variant.subject, "title": variant.title, "body": variant.body, "html": html}
    limits = render_limits(channel=channel)
    try:
        render_check(**parts, variables=variables, recipient=recipient, limits=limits)
    except RenderLimitExceeded as exc:
        problem = f"exceeds the render limits with these variables: {exc}"
    except SubjectLineBreak:
        problem = "renders its subject with a line break (CR or LF)"
    except Exception as exc:  # the variables' values broke a filter or tag
        problem = f"does not render with these variables: {exc}"
    else:
        return
    tag = f" {variant.label}" if variant.label else ""
    label = f"the {channel}/{variant.locale}{tag} variant of template {version.template.key!r}"
    message = f"{label} {problem}"[:1000]
    raise InvalidInput(message, fields={"variables": [message]})
