"""Fixtures of the serving tests."""

from __future__ import annotations

from typing import Any

import pytest

from tests.factories import ApiKeyFactory, RecipientFactory, TemplateFactory


@pytest.fixture
def sender() -> dict[str, Any]:
    """A client's raw API key, a recipient and a template to send."""
    key, raw = ApiKeyFactory.create_with_raw()
    recipient = RecipientFactory(client=key.client, external_id="user-1")
    TemplateFactory(client=key.client, key="order_shipped")
    return {"key": raw, "client": key.client, "recipient": recipient}
