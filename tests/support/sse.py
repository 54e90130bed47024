"""A Server-Sent Events client for the inbox stream (requests, streaming), for tests."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class Event:
    data: dict[str, Any] | None = None
    id: str | None = None
    comments: list[str] = field(default_factory=list)
    retry: int | None = None


class InboxStream:
    """`GET /api/v1/inbox/stream`; `next()` reads one event (its preceding comments kept)."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        since: str | None = None,
        last_event_id: str | None = None,
        header: bool = True,
        read_timeout: float = 10.0,
    ) -> None:
        headers: dict[str, str] = {"Accept": "text/event-stream"}
        params: dict[str, str] = {}
        if token is not None and header:
            headers["Authorization"] = f"Recipient {token}"
        elif token is not None:
            params["token"] = token
        if since is not None:
            params["since"] = since
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.response = requests.get(
            f"{base_url}/api/v1/inbox/stream",
            headers=headers,
            params=params,
            stream=True,
            timeout=(10, read_timeout),
        )
        self._lines = self.response.iter_lines(decode_unicode=True)

    def next(self) -> Event:
        """The next event (a `retry:`-only block or `data:` event); raises StopIteration at the
        end of the stream."""
        event = Event()
        for line in self._lines:
            if line == "":
                if event.data is not None or event.retry is not None:
                    return event
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                event.comments.append(value)
            elif name == "data":
                event.data = json.loads(value)
            elif name == "id":
                event.id = value
            elif name == "retry":
                event.retry = int(value)
        raise StopIteration

    def data(self, *, skip: tuple[str, ...] = ("ping",)) -> dict[str, Any]:
        """The next event's data, skipping heartbeats and the `skip` types."""
        while True:
            event = self.next()
            if event.data is not None and event.data.get("type") not in skip:
                return event.data

    def close(self) -> None:
        self.response.close()

    def __enter__(self) -> InboxStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
