"""(4) In-app: 1,000 connected WebSocket clients; accept->received latency of a notification
to each, beside the channel layer alone (group_send straight to the sockets, no API, worker or
database: the ceiling of the WebSocket stack)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from bench import load
from bench.env import load_average, process_env
from bench.ingestion import API_PATH, bulk_body, post
from bench.pacing import PACE_FRACTION, PROBE_CONNECTIONS, PROBE_SECONDS, pace
from bench.procs import Web, Worker
from bench.report import Figure
from bench.seed import Seed

ACCEPT_WINDOW = 120.0  # seconds to wait for every socket to receive its message
WARMUP = 100  # in-app notifications sent before the paced measurement, not measured


@dataclass
class Clients:
    """1,000 sockets in this process; every received notification noted with its wall time."""

    received: dict[str, list[tuple[float, dict[str, Any]]]] = field(default_factory=dict)
    sockets: list[Any] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    failed: int = 0

    def count(self) -> int:
        return sum(len(v) for v in self.received.values())


async def _reader(ws: Any, recipient: str, clients: Clients) -> None:
    try:
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            if message.get("type") == "notification":
                clients.received.setdefault(recipient, []).append((now, message))
            elif message.get("type") == "ping":
                await ws.send(json.dumps({"type": "ping"}))
    except Exception:
        clients.failed += 1


async def connect_all(url: str, tokens: dict[str, str], clients: Clients) -> float:
    import websockets

    ws_url = url.replace("http://", "ws://")
    started = time.monotonic()

    async def one(recipient: str, token: str) -> None:
        ws = await websockets.connect(
            f"{ws_url}/ws/inbox?token={token}",
            origin=url,  # type: ignore[arg-type]
            open_timeout=60,
            ping_interval=None,
            max_queue=None,
        )
        first = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
        if first.get("type") != "unread_count":
            raise RuntimeError(f"unexpected first message {first}")
        clients.sockets.append(ws)
        clients.tasks.append(asyncio.create_task(_reader(ws, recipient, clients)))

    items = list(tokens.items())
    for i in range(0, len(items), 50):  # 50 handshakes at a time
        await asyncio.gather(*(one(r, t) for r, t in items[i : i + 50]))
    return time.monotonic() - started


async def wait_for(clients: Clients, total: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while clients.count() < total and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


def _accepted_at(notification_ids: set[str]) -> dict[str, float]:
    from apps.deliveries.models import Notification

    return {
        str(i): c.timestamp()
        for i, c in Notification.objects.filter(id__in=notification_ids).values_list(
            "id", "created_at"
        )
    }


def _sent_at(notification_ids: set[str]) -> dict[str, float]:
    """When the worker stored each in-app message and handed it to the channel layer."""
    from apps.deliveries.models import Delivery

    return {
        str(n): s.timestamp()
        for n, s in Delivery.objects.filter(
            notification_id__in=notification_ids, sent_at__isnull=False
        ).values_list("notification_id", "sent_at")
    }


async def _run(
    web: Web,
    seed: Seed,
    tokens: dict[str, str],
    pks: dict[str, int],
    rate: float | None,
    fraction: float,
) -> dict[str, Any]:
    clients = Clients()
    connect_seconds = await connect_all(web.url, tokens, clients)
    n = len(tokens)
    recipients = list(tokens)
    loop = asyncio.get_running_loop()
    out: dict[str, Any] = {"connect_seconds": connect_seconds, "sockets": len(clients.sockets)}

    def body(i: int) -> bytes:
        """One single-recipient in-app notification to the i-th socket's recipient."""
        return json.dumps(
            {
                "recipient": recipients[i % n],
                "template": seed.template,
                "variables": {"order_id": f"W-{i}"},
                "channels": ["inapp"],
            }
        ).encode()

    headers = {"Authorization": f"Bearer {seed.api_key}"}
    # The path's capacity, measured now: single in-app notifications through the API in a
    # closed loop, until each has reached its socket (API, worker and layer together). Every
    # rate below is a fraction of it (or --inapp-rate when given).
    base = clients.count()
    started = loop.time()
    probe = await asyncio.to_thread(
        load.closed,
        web.url,
        API_PATH,
        headers=headers,
        body_fn=body,
        seconds=PROBE_SECONDS,
        connections=PROBE_CONNECTIONS,
    )
    await wait_for(clients, base + probe.ok, ACCEPT_WINDOW)
    received = clients.count() - base
    capacities = {
        "API peak": probe.rps,
        "received on sockets": received / (loop.time() - started),
    }
    out["pace"] = pace(capacities, fraction)
    out["rate_given"] = rate is not None
    if rate is None:
        rate = out["pace"].rate
    out["rate"] = rate

    # (a) ceiling: the channel layer straight to each recipient's group, paced.
    from channels.layers import get_channel_layer

    from apps.inbox.realtime import NOTIFICATION_EVENT, inbox_group

    layer = get_channel_layer()
    base = clients.count()
    start = loop.time()
    for i, recipient in enumerate(recipients):
        delay = start + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        payload = {"id": -(i + 1), "title": "ceiling", "body": "", "data": {"t": time.time()}}
        await layer.group_send(
            inbox_group(pks[recipient]), {"type": NOTIFICATION_EVENT, "message": payload}
        )
    await wait_for(clients, base + n, ACCEPT_WINDOW)
    ceiling = [
        (t - m["data"]["t"]) * 1000
        for msgs in clients.received.values()
        for t, m in msgs
        if m.get("title") == "ceiling"
    ]
    out["ceiling"] = ceiling

    # (b) the service, paced: one single-recipient in-app notification per socket at `rate`/s.
    async def paced(count: int, rate: float) -> tuple[load.LoadResult, set[str]]:
        """`count` of them at `rate`/s, and wait until every accepted one has arrived."""
        base = clients.count()
        result, bodies = await asyncio.to_thread(
            load.paced,
            web.url,
            API_PATH,
            headers=headers,
            body_fn=body,
            rate=rate,
            seconds=count / rate,
        )
        ids = {json.loads(b)["id"] for b in bodies if b.startswith(b"{") and b'"id"' in b}
        await wait_for(clients, base + len(ids), ACCEPT_WINDOW)
        return result, ids

    # Warm-up, not measured: a fresh web process's first POSTs and the workers' first sends
    # (connections, caches, lazy imports) took up to 400 ms for about two seconds, which is
    # start-up, not the steady state this figure is about.
    await paced(WARMUP, rate)
    # Everything received so far (the capacity probe, the warm-up) is left out of the figures.
    before = {
        m["data"].get("notification_id") for msgs in clients.received.values() for _, m in msgs
    }
    out["paced_api"], paced_ids = await paced(n, rate)
    out["paced_accepted"] = len(paced_ids)

    # (c) the service, one bulk request to all 1,000 at once (fan-out burst).
    base = clients.count()
    status, payload, seconds = await asyncio.to_thread(
        post, web.url + API_PATH, bulk_body(seed, recipients, 0, ["inapp"]), seed.api_key
    )
    if status != 202:
        raise RuntimeError(f"bulk in-app answered {status}: {payload[:300]!r}")
    await wait_for(clients, base + n, ACCEPT_WINDOW)
    out["bulk_request_seconds"] = seconds

    service = [
        (t, m["data"].get("notification_id"), m.get("title"))
        for msgs in clients.received.values()
        for t, m in msgs
        if m.get("title") != "ceiling" and m["data"].get("notification_id") not in before
    ]
    accepted = await asyncio.to_thread(_accepted_at, {nid for _, nid, _ in service if nid})
    bulk_id = json.loads(payload)["id"]
    out["paced"] = [(t - accepted[nid]) * 1000 for t, nid, _ in service if nid != bulk_id]
    # Where the paced latency goes: accept -> stored by the worker, stored -> on the socket.
    sent = await asyncio.to_thread(_sent_at, {nid for _, nid, _ in service if nid != bulk_id})
    out["paced_to_worker"] = [(sent[n] - accepted[n]) * 1000 for n in sent]
    out["paced_to_socket"] = [
        (t - sent[nid]) * 1000 for t, nid, _ in service if nid != bulk_id and nid in sent
    ]
    out["bulk"] = [(t - accepted[nid]) * 1000 for t, nid, _ in service if nid == bulk_id]
    out["failed_sockets"] = clients.failed
    for ws in clients.sockets:
        await ws.close()
    for task in clients.tasks:
        task.cancel()
    return out


# In-app sends are CPU work on this box (ORM + channel layer): 2 threads per worker process
# gave a lower median and p99 than 8 (23 vs 32 ms, 329 vs 546 ms at 50/s, same day).
INAPP_THREADS = 2


def mint_tokens(seed: Seed, count: int) -> tuple[dict[str, str], dict[str, int]]:
    """A recipient token and the primary key (for the layer-only ceiling) per recipient."""
    from apps.recipients.models import Recipient
    from apps.recipients.tokens import recipient_token_mint

    rows = list(
        Recipient.objects.filter(client_id=seed.client_id, external_id__in=seed.recipients[:count])
    )
    tokens = {r.external_id: recipient_token_mint(recipient=r).token for r in rows}
    return tokens, {r.external_id: r.pk for r in rows}


def run_inapp(
    seed: Seed,
    sockets: int,
    web_workers: int,
    rate: float | None = None,
    fraction: float = PACE_FRACTION,
) -> list[Figure]:
    """The figures, paced at `fraction` of the path's capacity measured first (or at `rate`)."""
    env = process_env()
    web = Web(env, workers=web_workers, name="inapp-web")
    from notifier.queues import channel_queues

    workers = [
        Worker(
            env,
            queues=channel_queues("inapp"),
            pool="threads",
            concurrency=INAPP_THREADS,
            name=f"inapp-{i}",
        )
        for i in range(2)
    ]
    try:
        tokens, pks = mint_tokens(seed, sockets)
        out = asyncio.run(_run(web, seed, tokens, pks, rate, fraction))
    finally:
        for w in workers:
            w.stop()
        web.stop()
    paced, bulk, ceiling = out["paced"], out["bulk"], out["ceiling"]
    rate = out["rate"]
    pacing = out["pace"].describe()
    if out["rate_given"]:
        pacing = f"at --inapp-rate {rate:g}/s, not the measured pace ({pacing})"
    p99 = load.percentile(paced, 99)
    note = (
        f"{out['sockets']} sockets connected in {out['connect_seconds']:.1f}s over "
        f"{web_workers} uvicorn processes; received {len(paced)}/{sockets} paced "
        f"({out['paced_accepted']} accepted by the API, statuses {out['paced_api'].statuses}) and "
        f"{len(bulk)}/{sockets} bulk; sockets dropped {out['failed_sockets']}; 2 inapp workers "
        f"(-P threads -c {INAPP_THREADS}); measured after {WARMUP} warm-up notifications; of "
        f"the paced latency, accept -> stored by the "
        f"worker p50 {load.percentile(out['paced_to_worker'], 50):.0f} / p99 "
        f"{load.percentile(out['paced_to_worker'], 99):.0f} ms, stored -> received p50 "
        f"{load.percentile(out['paced_to_socket'], 50):.0f} / p99 "
        f"{load.percentile(out['paced_to_socket'], 99):.0f} ms; the channel layer alone and "
        f"the service both {pacing}"
    )
    return [
        Figure(
            "inapp",
            f"accept->received p50 ({rate:.0f}/s paced)",
            load.percentile(paced, 50),
            "ms",
            ceiling=load.percentile(ceiling, 50),
            ceiling_name="layer only",
            load=load_average(),
            note=note,
        ),
        Figure(
            "inapp",
            f"accept->received p99 ({rate:.0f}/s paced)",
            p99,
            "ms",
            ceiling=load.percentile(ceiling, 99),
            ceiling_name="layer only",
            target="< 250 ms",
            met=p99 < 250 and len(paced) == sockets,
            load=load_average(),
        ),
        Figure(
            "inapp",
            f"bulk to {sockets:,} sockets: p50",
            load.percentile(bulk, 50),
            "ms",
            note=f"one request, {sockets} recipients; the request took "
            f"{out['bulk_request_seconds'] * 1000:.0f} ms",
        ),
        Figure("inapp", f"bulk to {sockets:,} sockets: p99", load.percentile(bulk, 99), "ms"),
    ]
