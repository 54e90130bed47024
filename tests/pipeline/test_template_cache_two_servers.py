"""The template cache across real web processes: a save through one uvicorn process is used by
the next notification request to another, whose cache held the version before the save."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from apps.deliveries.models import Notification
from tests.support.asgi import AsgiServer

pytestmark = [pytest.mark.pipeline]

BODY = {"recipient": "user-1", "template": "order_shipped", "variables": {"order_id": "A-1"}}
NEW_VARIANTS = [{"channel": "email", "subject": "Hi {{ name }}", "body": "Now {{ coupon }}"}]


@pytest.fixture
def servers(transactional_db: None) -> Iterator[tuple[AsgiServer, AsgiServer]]:
    first = AsgiServer(name="one")
    try:
        second = AsgiServer(name="two")
    except Exception:
        first.stop()
        raise
    yield first, second
    first.stop()
    second.stop()


def test_a_save_through_one_process_is_used_by_the_next_request_to_another(
    servers: tuple[AsgiServer, AsgiServer], api_key: tuple[Any, str], demo: dict[str, object]
) -> None:
    first, second = servers
    headers = {"Authorization": f"Bearer {api_key[1]}"}

    def post(server: AsgiServer, body: dict[str, Any]) -> requests.Response:
        return requests.post(
            f"{server.url}/api/v1/notifications", json=body, headers=headers, timeout=10
        )

    for _ in range(2):  # the second one from the process's cache
        assert post(second, BODY).status_code == 202
    saved = requests.put(
        f"{first.url}/api/v1/templates/order_shipped",
        json={"variants": NEW_VARIANTS},
        headers=headers,
        timeout=10,
    )
    assert saved.status_code == 200, saved.content

    stale = post(second, {**BODY, "variables": {"name": "Ada"}})
    fresh = post(second, {**BODY, "variables": {"name": "Ada", "coupon": "X"}})

    assert stale.status_code == 400, stale.content
    assert stale.json()["fields"]["variables"] == ["missing variable 'coupon'"]
    assert fresh.status_code == 202, fresh.content
    notification = Notification.objects.get(id=fresh.json()["id"])
    assert notification.template_version.number == 2
