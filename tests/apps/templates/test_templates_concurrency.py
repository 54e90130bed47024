"""Concurrent template saves on PostgreSQL: each thread has its own connection and transaction,
all released at once; the unique (client, key) index decides who creates the template."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connections
from rest_framework.test import APIClient

from apps.clients.models import ApiKey
from apps.templates.models import Template, TemplateVersion

URL = "/api/v1/templates"
VARIANTS = [{"channel": "sms", "body": "Order {{ order_id }} shipped."}]
THREADS = 5


def fire_together(raw_key: str, method: str, path: str, body: dict[str, Any]) -> list[Any]:
    barrier = threading.Barrier(THREADS)
    responses: list[Any] = []
    lock = threading.Lock()

    def send() -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
        try:
            barrier.wait(timeout=60)
            response = getattr(client, method)(path, body, format="json")
            with lock:
                responses.append(response)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return responses


@pytest.mark.django_db(transaction=True)
def test_five_concurrent_creates_of_one_key_make_one_template_and_one_version(
    api_key: tuple[ApiKey, str],
) -> None:
    responses = fire_together(api_key[1], "post", URL, {"key": "shipped", "variants": VARIANTS})

    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    for response in responses:
        if response.status_code == 409:
            body = response.json()
            assert set(body) == {"code", "message", "fields"}
            assert body["code"] == "conflict"
            assert body["fields"] == {"key": ["already exists"]}
    assert Template.objects.count() == 1
    assert TemplateVersion.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_five_concurrent_puts_of_a_new_key_create_it_once_and_add_five_versions(
    api_key: tuple[ApiKey, str],
) -> None:
    responses = fire_together(api_key[1], "put", f"{URL}/shipped", {"variants": VARIANTS})

    assert Counter(r.status_code for r in responses) == {201: 1, 200: 4}
    created = next(r for r in responses if r.status_code == 201)
    assert created.json()["version"] == 1
    assert Template.objects.count() == 1
    assert sorted(TemplateVersion.objects.values_list("number", flat=True)) == [1, 2, 3, 4, 5]
