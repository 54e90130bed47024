"""`make run` seeds a demo key on every start: the previous run's key is revoked."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.clients.models import ApiKey
from apps.ops.management.commands.seed_demo import DEMO_CLIENT

pytestmark = [pytest.mark.django_db]


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return str(json.loads(out.getvalue().strip().splitlines()[-1])["api_key"])


def _status(raw_key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return int(client.get("/api/v1/notifications").status_code)


def test_each_run_prints_a_new_key_and_revokes_the_previous_ones() -> None:
    first = _seed()
    assert _status(first) == 200

    second = _seed()
    third = _seed()

    assert len({first, second, third}) == 3
    assert _status(first) == 401
    assert _status(second) == 401
    assert _status(third) == 200
    keys = ApiKey.objects.filter(client__name=DEMO_CLIENT)
    assert keys.count() == 3
    assert keys.filter(revoked_at__isnull=True).count() == 1


def test_other_clients_keys_are_left_alone(api_key: tuple[ApiKey, str]) -> None:
    _seed()
    _seed()

    assert _status(api_key[1]) == 200
