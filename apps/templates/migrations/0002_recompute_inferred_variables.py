"""Versions saved before the scope-aware check stored `item` for `{% for item in items %}` (and
missed `items`): recompute the inferred required variables of every version whose stored list
is exactly what the old check inferred (a declared list is left alone)."""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.template import Engine, TemplateSyntaxError
from django.template.base import Variable, VariableNode

PARTS = ("subject", "title", "body", "html")


def _old_inference(sources: list[str]) -> list[str] | None:
    """What the previous check stored: the first lookup of every `{{ }}`, minus `recipient`."""
    engine = Engine(autoescape=False)
    names: set[str] = set()
    for source in sources:
        if not source:
            continue
        try:
            nodes = engine.from_string(source).nodelist.get_nodes_by_type(VariableNode)
        except TemplateSyntaxError:
            return None
        for node in nodes:
            var = node.filter_expression.var
            if isinstance(var, Variable) and var.lookups:
                names.add(var.lookups[0])
    return sorted(names - {"recipient"})


def recompute(apps: Any, schema_editor: Any) -> None:
    from notifier.rendering import TemplateError, required_variables

    version_model = apps.get_model("templates", "TemplateVersion")
    for version in version_model.objects.prefetch_related("variants").iterator(chunk_size=500):
        sources = [getattr(v, part) or "" for v in version.variants.all() for part in PARTS]
        if list(version.variables) != _old_inference(sources):
            continue  # declared by the template's author, or unreadable: left as it is
        try:
            new = required_variables(sources)
        except TemplateError:
            continue  # uses a tag no longer allowed: it fails at send time either way
        if new != list(version.variables):
            version.variables = new
            version.save(update_fields=["variables"])


class Migration(migrations.Migration):
    dependencies = [("templates", "0001_initial")]

    operations = [migrations.RunPython(recompute, migrations.RunPython.noop)]
