"""The async client against the real service: the same calls, awaited."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from notifier_client import AsyncNotifierClient, NotFoundError, ValidationError
from tests.conftest import QUICK_RETRY, Service


def test_send_get_list_and_errors(service: Service, user: str) -> None:
    async def scenario() -> None:
        async with AsyncNotifierClient(service.url, service.api_key, retry=QUICK_RETRY) as api:
            sent = await asyncio.gather(
                *(
                    api.send(
                        "welcome", recipient=user, channels=["inapp"], variables={"order_id": n}
                    )
                    for n in range(3)
                )
            )
            fetched = await api.get_notification(sent[0]["id"])
            assert fetched["id"] == sent[0]["id"]
            listed = [n["id"] async for n in api.iter_notifications(recipient=user, limit=2)]
            assert sorted(listed) == sorted(s["id"] for s in sent)
            with pytest.raises(NotFoundError):
                await api.get_notification(str(uuid.uuid4()))
            with pytest.raises(ValidationError) as invalid:
                await api.send_bulk("welcome", [user], strict=True, channels=["fax"])  # type: ignore[list-item]
            assert "channels" in invalid.value.fields

    asyncio.run(scenario())
