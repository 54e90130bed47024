"""An ASGI app shared by every simulator: provider routes, a fault engine, a control API.

Control API (JSON):
- `GET /_sim/requests`   every request received: {"path", "body", "status", "at", "key",
                          "peer"} (peer: the client's port, one per TCP connection)
- `GET /_sim/stats`      counts: {"received", "accepted", "by_status": {...}, "in_flight",
                          "max_in_flight"} (provider requests being served now, and the most
                          served at once since the last reset)
- `POST /_sim/reset`     forget requests and faults (and the in-flight maximum)
- `POST /_sim/faults`    add a fault: {"kind": "status" | "timeout" | "latency" | "invalid",
                          "status": 503, "retry_after": 2, "seconds": 30, "ms": 100,
                          "jitter_ms": 0, "share": 1.0, "count": null, "duration": null,
                          "match": null}
- `DELETE /_sim/faults`  clear faults
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Fault:
    kind: str
    status: int = 503
    retry_after: float | None = None
    seconds: float = 30.0
    ms: float = 0.0
    jitter_ms: float = 0.0  # latency: each request waits ms +/- a uniform jitter_ms
    share: float = 1.0
    count: int | None = None
    until: float | None = None
    match: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        duration = data.get("duration")
        return cls(
            kind=str(data["kind"]),
            status=int(data.get("status", 503)),
            retry_after=data.get("retry_after"),
            seconds=float(data.get("seconds", 30.0)),
            ms=float(data.get("ms", 0.0)),
            jitter_ms=float(data.get("jitter_ms", 0.0)),
            share=float(data.get("share", 1.0)),
            count=data.get("count"),
            until=time.monotonic() + float(duration) if duration is not None else None,
            match=data.get("match"),
        )

    def applies(self, raw_body: str, rng: random.Random) -> bool:
        if self.until is not None and time.monotonic() > self.until:
            return False
        if self.count is not None and self.count <= 0:
            return False
        if self.match is not None and self.match not in raw_body:
            return False
        if rng.random() >= self.share:
            return False
        if self.count is not None:
            self.count -= 1
        return True


class Provider:
    """What a simulator implements for its provider."""

    name = "provider"

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
        raise NotImplementedError

    def invalid(self, path: str, body: Any) -> Reply:
        """The provider's answer for an invalid address or token."""
        return Reply(400, {"error": "invalid"})

    def error(self, status: int, retry_after: float | None) -> Reply:
        headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
        return Reply(status, {"error": f"simulated {status}"}, headers)

    def key(self, path: str, body: Any) -> str:
        """An identifier of the message (the delivery id) to count duplicates by."""
        return ""

    async def after(self, path: str, body: Any, reply: Reply) -> None:
        """Work after answering (e.g. status callbacks), run in the background."""
        return


def parse_body(headers: dict[str, str], raw: bytes) -> Any:
    kind = headers.get("content-type", "")
    text = raw.decode("utf-8", "replace")
    if "json" in kind:
        try:
            return json.loads(text or "null")
        except json.JSONDecodeError:
            return text
    if "x-www-form-urlencoded" in kind:
        return dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
    return text


class Simulator:
    def __init__(self, provider: Provider, *, seed: int | None = None) -> None:
        self.provider = provider
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.rng = random.Random(seed)  # noqa: S311 - fault sampling, not security
        self._background: set[asyncio.Task[None]] = set()
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        reply: Reply | None
        if path.startswith("/_sim/"):
            reply = self.control(scope["method"], path, raw)
        else:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                peer = (scope.get("client") or ("", 0))[1]
                reply = await self.serve(scope["method"], path, headers, raw, peer=peer)
            finally:
                self.in_flight -= 1
            if reply is None:  # a simulated timeout: hang up without answering
                await send({"type": "http.response.start", "status": 504, "headers": []})
                await send({"type": "http.response.body", "body": b""})
                return
        await _respond(send, reply)

    async def serve(
        self, method: str, path: str, headers: dict[str, str], raw: bytes, *, peer: int = 0
    ) -> Reply | None:
        body = parse_body(headers, raw)
        text = raw.decode("utf-8", "replace")
        reply: Reply | None = None
        for fault in list(self.faults):
            if not fault.applies(text, self.rng):
                continue
            if fault.kind == "latency":
                jitter = self.rng.uniform(-fault.jitter_ms, fault.jitter_ms)
                await asyncio.sleep(max(0.0, fault.ms + jitter) / 1000)
                continue
            if fault.kind == "timeout":
                self._record(path, body, 0, peer)
                await asyncio.sleep(fault.seconds)
                return None
            reply = (
                self.provider.invalid(path, body)
                if fault.kind == "invalid"
                else self.provider.error(fault.status, fault.retry_after)
            )
            break
        if reply is None:
            reply = self.provider.handle(method, path, headers, body)
        self._record(path, body, reply.status, peer)
        task = asyncio.get_running_loop().create_task(self.provider.after(path, body, reply))
        self._background.add(task)  # keep a reference until it finishes
        task.add_done_callback(self._background.discard)
        return reply

    def _record(self, path: str, body: Any, status: int, peer: int = 0) -> None:
        self.requests.append(
            {
                "path": path,
                "body": body,
                "status": status,
                "at": time.time(),
                "key": self.provider.key(path, body),
                "peer": peer,
            }
        )

    def control(self, method: str, path: str, raw: bytes) -> Reply:
        if path == "/_sim/requests" and method == "GET":
            return Reply(200, self.requests)
        if path == "/_sim/stats" and method == "GET":
            by_status: dict[str, int] = {}
            for r in self.requests:
                by_status[str(r["status"])] = by_status.get(str(r["status"]), 0) + 1
            accepted = sum(1 for r in self.requests if 200 <= r["status"] < 300)
            return Reply(
                200,
                {
                    "received": len(self.requests),
                    "accepted": accepted,
                    "by_status": by_status,
                    "in_flight": self.in_flight,
                    "max_in_flight": self.max_in_flight,
                },
            )
        if path == "/_sim/reset" and method == "POST":
            self.requests.clear()
            self.faults.clear()
            self.max_in_flight = self.in_flight
            return Reply(200, {"ok": True})
        if path == "/_sim/faults" and method == "POST":
            try:
                self.faults.append(Fault.from_json(json.loads(raw or b"{}")))
            except (KeyError, ValueError, TypeError) as exc:
                return Reply(400, {"error": str(exc)})
            return Reply(201, {"faults": len(self.faults)})
        if path == "/_sim/faults" and method == "DELETE":
            self.faults.clear()
            return Reply(200, {"ok": True})
        return Reply(404, {"error": "unknown control path"})


async def _respond(send: Send, reply: Reply) -> None:
    payload = b"" if reply.body is None else json.dumps(reply.body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    headers += [(k.encode(), v.encode()) for k, v in reply.headers.items()]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
