"""Migration 0002 (recipients) on a database that already holds recipients and devices."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("recipients", "0001_initial")]
AFTER = [("recipients", "0002_recipient_public_id_device_per_client")]


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("back_to_the_latest_schema")
def test_existing_recipients_and_devices_are_migrated() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    client_model = old.get_model("clients", "ApiClient")
    recipient_model = old.get_model("recipients", "Recipient")
    device_model = old.get_model("recipients", "Device")
    a, b = client_model.objects.create(name="a"), client_model.objects.create(name="b")
    alice = recipient_model.objects.create(client=a, external_id="alice")
    bob = recipient_model.objects.create(client=b, external_id="bob")
    device_model.objects.create(recipient=alice, token="tok-a", platform="ios")
    device_model.objects.create(recipient=bob, token="tok-b", platform="android")
    device_model.objects.create(recipient=bob, token="x" * 3000, platform="web")

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)

    new = executor.loader.project_state(AFTER).apps
    recipients = new.get_model("recipients", "Recipient").objects.order_by("pk")
    public_ids = [r.public_id for r in recipients]
    assert None not in public_ids
    assert len(set(public_ids)) == 2
    devices = new.get_model("recipients", "Device").objects.order_by("token")
    assert [(d.token, d.client_id) for d in devices] == [("tok-a", a.pk), ("tok-b", b.pk)]
