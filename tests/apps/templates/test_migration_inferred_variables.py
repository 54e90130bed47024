"""Migration 0002: versions stored with the old, scope-blind inference get the new one."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("templates", "0001_initial")]
AFTER = [("templates", "0002_recompute_inferred_variables")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_the_latest_schema")
def test_old_loop_versions_are_recomputed_and_declared_ones_kept() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old_apps = executor.loader.project_state(BEFORE).apps
    client = old_apps.get_model("clients", "ApiClient").objects.create(name="c")
    template_model = old_apps.get_model("templates", "Template")
    version_model = old_apps.get_model("templates", "TemplateVersion")
    variant_model = old_apps.get_model("templates", "TemplateVariant")

    def version(key: str, body: str, variables: list[str]) -> int:
        template = template_model.objects.create(client=client, key=key)
        saved = version_model.objects.create(template=template, number=1, variables=variables)
        variant_model.objects.create(version=saved, channel="sms", locale="en", body=body)
        return int(saved.pk)

    loop = version("order", "{% for item in items %}{{ item.name }}{% endfor %}", ["item"])
    declared = version("declared", "{{ a }}", ["a", "b"])
    plain = version("plain", "{{ a }}", ["a"])

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    new_apps = executor.loader.project_state(AFTER).apps
    stored = dict(
        new_apps.get_model("templates", "TemplateVersion").objects.values_list("pk", "variables")
    )
    assert stored == {loop: ["items"], declared: ["a", "b"], plain: ["a"]}
