"""A local SMTP server (aiosmtpd) that records every message it accepts, for the SMTP provider
and the SendGrid -> SMTP failover tests. Runs in the test process on its own thread; workers
reach it over TCP like any SMTP server."""

from __future__ import annotations

import email
import threading
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.support.processes import free_port


class RecordingHandler:
    """aiosmtpd handler: keeps each accepted message; `refuse_with` answers RCPT with a code."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.refuse_with: str | None = None
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse_with:
            return self.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        with self._lock:
            self.messages.append(email.message_from_bytes(content))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self) -> None:
        self.handler = RecordingHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    @property
    def messages(self) -> list[Message]:
        with self.handler._lock:
            return list(self.handler.messages)

    def delivery_ids(self) -> list[str]:
        return [str(m["X-Delivery-Id"]) for m in self.messages]

    def reset(self) -> None:
        with self.handler._lock:
            self.handler.messages.clear()
        self.handler.refuse_with = None

    def stop(self) -> None:
        self.controller.stop()
