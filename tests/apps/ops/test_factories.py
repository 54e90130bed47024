"""The factories are the one seeder: shipped with the app (seed_demo runs in production
images), re-exported to the tests, and what bench seeds with."""

from __future__ import annotations

import io
import json
import tomllib

import pytest
from django.core.management import call_command

import apps.ops.factories as shipped
import tests.factories as for_tests
from apps.recipients.models import Device, Recipient
from apps.templates.models import TemplateVariant
from tests.support.processes import ROOT


def test_the_tests_factories_are_the_shipped_ones() -> None:
    names = [name for name in dir(shipped) if name.endswith("Factory")]

    assert len(names) >= 14
    for name in names:
        assert getattr(for_tests, name) is getattr(shipped, name), name


def test_factory_boy_is_a_pinned_main_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

    assert "factory-boy==3.3.3" in project["dependencies"]
    assert not any(d.startswith("factory-boy") for d in project["optional-dependencies"]["dev"])


@pytest.mark.django_db
def test_bench_seeds_the_factories_recipients_devices_and_template() -> None:
    from bench.seed import seed

    data = seed(recipients=30, label="test")

    recipients = Recipient.objects.filter(client_id=data.client_id)
    assert recipients.count() == 30
    assert sorted(data.recipients) == sorted(r.external_id for r in recipients)
    for recipient in recipients:  # the factory's row: email from the external id, a phone
        assert recipient.email == f"{recipient.external_id}@example.com"
        assert recipient.phone.startswith("+1555")
    devices = Device.objects.filter(client_id=data.client_id)
    assert devices.count() == 30
    assert {d.platform for d in devices} == {Device.Platform.ANDROID}
    variants = TemplateVariant.objects.filter(
        version__template__client_id=data.client_id, version__template__key=data.template
    )
    assert {(v.channel, v.title, v.body) for v in variants} == {
        (v["channel"], v.get("title", ""), v["body"]) for v in shipped.DEFAULT_VARIANTS
    }


@pytest.mark.django_db
def test_seed_demo_again_updates_the_demo_recipient_in_place() -> None:
    call_command("seed_demo", "--email", "first@example.com", stdout=io.StringIO())
    out = io.StringIO()
    call_command("seed_demo", "--email", "second@example.com", stdout=out)

    printed = json.loads(out.getvalue().strip().splitlines()[-1])
    (recipient,) = Recipient.objects.filter(external_id=printed["recipient"])
    assert recipient.email == "second@example.com"
    assert (recipient.name, recipient.locale, recipient.timezone) == ("Ada", "en", "UTC")
