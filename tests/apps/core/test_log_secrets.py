"""No credentials in the logs: recipient tokens in WebSocket handshakes (uvicorn logs each one
with its query string at INFO), API keys and Authorization headers, read from the actual output
of a real web process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from apps.recipients.tokens import recipient_token_mint
from tests.factories import RecipientFactory
from tests.support.asgi import AsgiServer
from tests.support.processes import ROOT
from tests.support.ws import InboxSocket

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def web() -> Iterator[AsgiServer]:
    # uvicorn's own access log too: it is what prints full request lines.
    server = AsgiServer(name="secrets", env={"ACCESS_LOG_LEVEL": "INFO"})
    yield server
    server.stop()


def test_websocket_tokens_and_api_keys_are_masked_in_the_web_log(
    web: AsgiServer, api_key: tuple[object, str]
) -> None:
    recipient = RecipientFactory()
    token = recipient_token_mint(recipient=recipient).token
    socket = InboxSocket(web.ws_url, token)
    assert socket.receive_type("unread_count")["count"] == 0
    socket.close()
    forged = "forged." + "A" * 40
    with InboxSocket(web.ws_url, forged) as refused:  # refused, but the handshake is logged
        assert refused.close_code() == 4401
    # A client that puts credentials in the query string of a plain request.
    requests.get(
        f"{web.url}/api/v1/notifications?api_key={api_key[1]}&key=sekrit-value-1&limit=5",
        timeout=10,
    )
    web.stop()
    log = web.log()

    for secret in (token, token.split(":")[-1], forged, api_key[1], "sekrit-value-1"):
        assert secret not in log
    assert "/ws/inbox?token=***" in log  # uvicorn's handshake line, still there, masked
    assert "api_key=***&key=***&limit=5" in log  # the access line keeps what is not secret


CELERY_TASK_LOGGER = """
import django
django.setup()
from celery.utils.log import get_task_logger
from config.celery import app
app.log.setup(loglevel="INFO")  # what `celery worker` does at start
get_task_logger("tasks.example").warning("fetched %s", "https://x.test/feed?token=tok-123-secret")
"""


def test_celery_task_loggers_are_masked_too() -> None:
    """Celery gives `celery.task` a stderr handler of its own that does not propagate."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}

    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", CELERY_TASK_LOGGER],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert "tok-123-secret" not in result.stderr
    assert "fetched https://x.test/feed?token=***" in result.stderr
