"""The chaos run's burst (bench/chaos.py): the request bodies (plain notifications, a share
with the digest template, a few to the topic) and the client that places each one until it is
accepted, retrying under the same Idempotency-Key."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bench import load
from bench.faults import FLUSH_AT, KILL_AT
from bench.seed import Seed

if TYPE_CHECKING:
    from bench.chaos import ChaosConfig

CHANNELS = ["email", "sms", "push", "inapp"]
# The topic every chaos recipient follows, and the channels of each topic notification in turn.
TOPIC = "chaos-watchers"
TOPIC_CHANNELS = [["email"], ["push", "inapp"]]
# Topic notifications go this long before the kill or the flush; the digest template's share is
# spread from the start to this (times before --fault-scale, as the faults' are).
TOPIC_LEAD = 0.5
DIGESTS_UNTIL = 50.0


@dataclass
class Burst:
    accepted: dict[str, int] = field(default_factory=dict)  # notification id -> deliveries
    fan_outs: set[str] = field(default_factory=set)  # those sent to a topic
    requests: int = 0
    retried: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failed: int = 0
    seconds: float = 0.0  # until the last of the untimed requests was accepted
    timed_seconds: float = 0.0  # until the last timed one was


@dataclass(frozen=True)
class Timed:
    """A request placed `at` seconds after the burst's start (not as fast as possible)."""

    at: float
    body: bytes


async def _burst(
    url: str, api_key: str, bodies: list[bytes], connections: int, timed: list[Timed]
) -> Burst:
    """`bodies` over `connections` as fast as they are accepted; each of `timed` on its own
    connection at its time from the start."""
    host, port = url.removeprefix("http://").split(":")
    result = Burst()
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for item in enumerate(bodies):
        queue.put_nowait(item)
    started = time.monotonic()

    async def place(conn: load._Conn, index: int, body: bytes) -> load._Conn:
        """Send until accepted (at most 30 tries) under one Idempotency-Key. Returns the
        connection (a new one if the old one broke)."""
        key = f"chaos-{index}"
        headers = {"Authorization": f"Bearer {api_key}", "Idempotency-Key": key}
        for attempt in range(30):
            result.requests += 1
            result.retried += 1 if attempt else 0
            try:
                status, payload = await load._request(
                    conn,
                    load.build_request(host, int(port), "/api/v1/notifications", body, headers),
                )
            except (OSError, asyncio.IncompleteReadError):
                status, payload = 0, b""
                await asyncio.sleep(0.5)
                conn = await load._open(host, int(port))
            result.statuses[status] = result.statuses.get(status, 0) + 1
            if status == 202:
                data = json.loads(payload)
                result.accepted[data["id"]] = accepted_deliveries(body, data)
                if data.get("recipients") == "fan-out":
                    result.fan_outs.add(data["id"])
                return conn
            # 503/429 carry Retry-After; anything else: back off and retry the same key.
            await asyncio.sleep(min(5.0, 0.5 * (attempt + 1)))
        result.failed += 1
        return conn

    async def client() -> None:
        conn = await load._open(host, int(port))
        while not queue.empty():
            index, body = queue.get_nowait()
            conn = await place(conn, index, body)
        result.seconds = max(result.seconds, time.monotonic() - started)

    async def at(offset: int, item: Timed) -> None:
        await asyncio.sleep(max(0.0, started + item.at - time.monotonic()))
        conn = await place(await load._open(host, int(port)), offset, item.body)
        conn.writer.close()
        result.timed_seconds = max(result.timed_seconds, time.monotonic() - started)

    await asyncio.gather(
        *(client() for _ in range(connections)),
        *(at(len(bodies) + i, item) for i, item in enumerate(timed)),
    )
    return result


def run_burst(
    url: str, api_key: str, bodies: list[bytes], connections: int, timed: list[Timed]
) -> Burst:
    return asyncio.run(_burst(url, api_key, bodies, connections, timed))


def accepted_deliveries(body: bytes, answer: dict[str, Any]) -> int:
    """Deliveries a 202 stands for: recipients x channels, or the fan-out's `expected`."""
    if answer.get("recipients") == "fan-out":
        return int(answer["expected"])
    request = json.loads(body)
    return len(request["recipients"]) * len(request["channels"])


def _bodies(recipients: list[str], template: str, count: int, batch: int, tag: str) -> list[bytes]:
    """`count` notifications of `template`, `batch` recipients a request (cycling through
    `recipients`), one channel a request (cycling through CHANNELS)."""
    bodies = []
    sent = 0
    index = 0
    while sent < count:
        size = min(batch, count - sent)
        start = (index * batch) % len(recipients)
        chunk = [recipients[(start + j) % len(recipients)] for j in range(size)]
        bodies.append(
            json.dumps(
                {
                    "recipients": chunk,
                    "template": template,
                    "variables": {"order_id": f"{tag}-{index}"},
                    "channels": [CHANNELS[index % len(CHANNELS)]],
                }
            ).encode()
        )
        sent += size
        index += 1
    return bodies


def topic_body(recipients: list[str], template: str, index: int) -> bytes:
    return json.dumps(
        {
            "topic": TOPIC,
            "exclude": recipients[:1],
            "template": template,
            "variables": {"order_id": f"T-{index}"},
            "channels": TOPIC_CHANNELS[index % len(TOPIC_CHANNELS)],
        }
    ).encode()


def digest_count(cfg: ChaosConfig) -> int:
    """How many of the burst's notifications use the digest template."""
    return round(cfg.notifications * cfg.digest_share)


def burst_bodies(data: Seed, cfg: ChaosConfig, digest_template: str | None = None) -> list[bytes]:
    """The plain notifications, sent as fast as they are accepted."""
    digests = digest_count(cfg) if digest_template else 0
    return _bodies(data.recipients, data.template, cfg.notifications - digests, cfg.batch, "C")


def timed_bodies(data: Seed, cfg: ChaosConfig, digest_template: str | None = None) -> list[Timed]:
    """The digest template's share, spread evenly from the start to DIGESTS_UNTIL (so windows
    open and close through the kill and the flush), and the topic notifications, each just
    before the kill or the flush in turn (its fan-out runs through it)."""
    s = cfg.fault_scale
    timed: list[Timed] = []
    if digest_template and digest_count(cfg):
        pool = data.recipients[: cfg.digest_batch]
        bodies = _bodies(pool, digest_template, digest_count(cfg), cfg.digest_batch, "D")
        timed += [Timed(DIGESTS_UNTIL * s * i / len(bodies), body) for i, body in enumerate(bodies)]
    for i in range(cfg.topic_notifications):
        at = (KILL_AT, FLUSH_AT)[i % 2] * s - TOPIC_LEAD + i // 2
        timed.append(Timed(max(0.0, at), topic_body(data.recipients, data.template, i)))
    return timed
