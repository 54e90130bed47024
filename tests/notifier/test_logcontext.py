"""The log filters: context on every record, personal data masked everywhere in it."""

from __future__ import annotations

import json
import logging

from pythonjsonlogger.json import JsonFormatter

from apps.core.sentry import sentry_before_send
from notifier.logcontext import (
    ContextFilter,
    MaskingFilter,
    log_context_bind,
    log_context_clear,
)


def _render(logger_name: str, emit: object) -> dict[str, object]:
    records: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Capture()
    handler.setFormatter(JsonFormatter("%(levelname)s %(name)s %(message)s"))
    handler.addFilter(ContextFilter())
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger(logger_name)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        emit(logger)  # type: ignore[operator]
    finally:
        logger.removeHandler(handler)
    (line,) = records
    return dict(json.loads(line))


def test_message_args_extras_and_exceptions_are_masked() -> None:
    def emit(logger: logging.Logger) -> None:
        try:
            raise ValueError("bad address ada.lovelace@example.com")  # noqa: TRY301
        except ValueError:
            logger.exception(
                "to %s and %s",
                "ada.lovelace@example.com",
                "+15551234567",
                extra={"to": "+44 20 7946 0958", "data": {"emails": ["bob@example.net"]}},
            )

    line = _render("t.mask", emit)
    text = json.dumps(line)
    for raw in ("lovelace", "1234567", "7946"):
        assert raw not in text
    assert "bob@" not in text
    assert line["message"] == "to a***@example.com and ***4567"
    assert line["to"] == "***0958"
    assert line["data"] == {"emails": ["b***@example.net"]}
    assert "a***@example.com" in str(line["exc_info"])


def test_bound_context_is_on_every_record_and_ids_are_not_mangled() -> None:
    log_context_clear()
    delivery_id = "12345678-1234-1234-1234-123456789012"
    log_context_bind(delivery_id=delivery_id, channel="sms", provider="twilio", attempt=2)
    try:
        line = _render("t.ctx", lambda logger: logger.info("hello"))
    finally:
        log_context_clear()
    assert line["delivery_id"] == delivery_id
    assert (line["channel"], line["provider"], line["attempt"]) == ("sms", "twilio", 2)
    assert "delivery_id" not in _render("t.ctx2", lambda logger: logger.info("after"))


def test_sentry_events_are_masked_before_sending() -> None:
    event = {
        "message": "failed for ada@example.com",
        "exception": {"values": [{"value": "number +15551234567 invalid"}]},
        "extra": {"recipient": {"email": "ada@example.com"}},
    }
    masked = sentry_before_send(event, {})
    assert "ada@" not in json.dumps(masked)
    assert "1234567" not in json.dumps(masked)
    assert masked["message"] == "failed for a***@example.com"
    assert masked["exception"]["values"][0]["value"] == "number ***4567 invalid"


def test_authorization_headers_and_api_keys_are_masked_in_any_record() -> None:
    """Whatever logs a request's headers (a repr of a dict, of ASGI scope tuples, raw text)."""
    key = "nk_0a1b2c3d_" + "k" * 43
    records = [
        ("headers %s", ({"Authorization": f"Bearer {key}", "Accept": "*/*"},)),
        ("scope %r", ([(b"authorization", b"Recipient abc.def:ghi"), (b"host", b"x")],)),
        ("raw %s", ("Authorization: Bearer sk-live-123\r\nHost: x",)),
        ("meta %s", ({"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},)),
        ("a key in free text: %s", (key,)),
    ]
    masking = MaskingFilter()
    out = []
    for msg, args in records:
        record = logging.LogRecord("t", logging.INFO, __file__, 1, msg, args, None)
        masking.filter(record)
        out.append(record.getMessage())

    text = "\n".join(out)
    for secret in ("k" * 43, "abc.def:ghi", "sk-live-123", "dXNlcjpwYXNz"):
        assert secret not in text
    assert "'Authorization': 'Bearer ***'" in out[0]
    assert "'Accept': '*/*'" in out[0]
    assert "(b'authorization', b'Recipient ***')" in out[1]
    assert "Authorization: Bearer ***\r\nHost: x" in out[2]
    assert "'HTTP_AUTHORIZATION': 'Basic ***'" in out[3]
    assert out[4] == "a key in free text: nk_0a1b2c3d_***"


def test_sentry_events_lose_query_tokens_headers_and_keys() -> None:
    key = "nk_0a1b2c3d_" + "k" * 43
    event = {
        "request": {
            "url": "https://notify.example/ws/inbox",
            "query_string": "token=abc.def:ghi&since=4",
            "headers": {"Authorization": f"Bearer {key}", "X-Api-Key": "raw", "Accept": "*/*"},
        },
        "exception": {"values": [{"value": f"rejected {key}"}]},
        "extra": {"vars": {"api_key": "raw-2", "password": "hunter2", "template": "welcome"}},
    }

    masked = sentry_before_send(event, {})

    text = json.dumps(masked)
    for secret in ("abc.def:ghi", "k" * 43, '"raw"', "raw-2", "hunter2"):
        assert secret not in text
    assert masked["request"]["query_string"] == "token=***&since=4"
    assert masked["request"]["headers"] == {
        "Authorization": "***",
        "X-Api-Key": "***",
        "Accept": "*/*",
    }
    assert masked["exception"]["values"][0]["value"] == "rejected nk_0a1b2c3d_***"
    assert masked["extra"]["vars"] == {"api_key": "***", "password": "***", "template": "welcome"}


def test_entries_named_like_a_signing_key_are_masked() -> None:
    """Django's SECRET_KEY (and its fallbacks, the environment variable, a private key) is a
    credential like a token: a frame's locals or a settings dict in an event lose it."""
    key = "Zx9" * 20  # shaped like `make run`'s var/secret_key, nothing the text masks catch
    event = {
        "extra": {
            "settings": {
                "SECRET_KEY": key,
                "SECRET_KEY_FALLBACKS": [key],
                "DEBUG": False,
            },
            "environ": {"DJANGO_SECRET_KEY": key, "HOME": "/srv"},
            "vars": {"secret_key": key, "private_key": key, "key_prefix": "nk"},
        }
    }

    masked = sentry_before_send(event, {})

    assert key not in json.dumps(masked)
    assert masked["extra"]["settings"]["DEBUG"] is False
    assert masked["extra"]["environ"]["HOME"] == "/srv"
    assert masked["extra"]["vars"]["key_prefix"] == "nk"
