"""(6) Topic fan-out: one trigger to a topic of N subscribers (100,000 by default), from the 202
to every delivery created and published, beside the bulk endpoint's deliveries per second in the
same run (target: at least 80% of it), and the fan-out worker's memory over the run (flat: the
worker holds one chunk at a time).

python -m bench --only fanout [--fanout-subscribers 100000]
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from bench import load
from bench.env import load_average, process_env
from bench.ingestion import API_PATH, bulk_body, post
from bench.procs import Web, Worker
from bench.report import Figure
from bench.seed import Seed, seed, subscribe_all, unseed

TOPIC = "bench-watchers"
CHANNELS = ["email"]
# The bulk endpoint's rate: this many requests of 1000 recipients each.
BULK_REQUESTS = 10
TARGET = 0.8


@dataclass
class FanOutRun:
    seconds: float
    created: int
    published: int
    rss_mb: list[float]


def _bulk_rate(web: Web, data: Seed, flush: object) -> tuple[float, list[float]]:
    """Deliveries created and published per second by POST /notifications, 1000 recipients a
    request (the first request warms up)."""
    recipients = data.recipients[:1000]
    times: list[float] = []
    for i in range(BULK_REQUESTS + 1):
        flush()  # type: ignore[operator]
        status, payload, seconds = post(
            web.url + API_PATH, bulk_body(data, recipients, i, CHANNELS), data.api_key
        )
        if status != 202:
            raise RuntimeError(f"bulk request answered {status}: {payload[:500]!r}")
        if i:
            times.append(seconds)
    return len(recipients) * len(CHANNELS) * len(times) / sum(times), times


def _warm(worker: Worker) -> None:
    """Wait until the worker is up and has run a fan-out task (one for no notification: a
    no-op), so that its start-up is not counted."""
    from apps.core import broker
    from apps.deliveries.fanout import fan_out_publish
    from bench.procs import wait_until
    from notifier.queues import MAINTENANCE_QUEUE

    fan_out_publish("00000000-0000-0000-0000-000000000000")
    wait_until(
        lambda: (
            not broker.queue_depths([MAINTENANCE_QUEUE])[MAINTENANCE_QUEUE]
            and not broker.unacked_count()
        ),
        timeout=120,
    )
    if not worker.alive():
        raise RuntimeError(f"the fan-out worker exited; see {worker.log_path}")


def _queued_deliveries() -> int:
    from apps.core import broker
    from apps.deliveries.queueing import send_message_delivery_ids

    return sum(len(send_message_delivery_ids(m)) for _, m in broker.queued_messages())


def _fan_out(web: Web, data: Seed, worker: Worker) -> FanOutRun:
    from django.db import connection

    from apps.deliveries.models import FanOut

    body = json.dumps(
        {
            "topic": TOPIC,
            "template": data.template,
            "variables": {"order_id": "F-1"},
            "channels": CHANNELS,
        }
    ).encode()
    status, payload, _ = post(web.url + API_PATH, body, data.api_key)
    accepted = time.time()
    if status != 202:
        raise RuntimeError(f"topic request answered {status}: {payload[:500]!r}")
    notification_id = json.loads(payload)["id"]
    rss: list[float] = []
    while True:
        connection.close()  # a fresh snapshot each poll
        fan = FanOut.objects.get(notification_id=notification_id)
        if fan.finished_at is not None:
            break
        if fan.created:  # from the first chunk on: the worker's steady state
            rss.append(sum(worker.rss().values()) / 2**20)
        time.sleep(0.5)
    # The last chunk publishes right after the commit that finishes the row.
    seconds = fan.finished_at.timestamp() - accepted
    return FanOutRun(seconds, fan.created, _queued_deliveries(), rss)


def run_fanout(web: Web, subscribers: int, flush: object) -> list[Figure]:
    """Seed a client with `subscribers` recipients all following one topic, measure the bulk
    endpoint's rate, then the fan-out's, with one fan-out worker (the maintenance worker)."""
    from notifier.queues import MAINTENANCE_QUEUE

    data = seed(recipients=subscribers, label="bench-fanout")
    worker: Worker | None = None
    try:
        subscribe_all(data, topic=TOPIC)
        bulk_rate, bulk_times = _bulk_rate(web, data, flush)
        flush()  # type: ignore[operator]
        # As the Procfile runs it: the solo pool.
        worker = Worker(
            process_env(), queues=[MAINTENANCE_QUEUE], pool="solo", concurrency=1, name="fanout"
        )
        _warm(worker)
        run = _fan_out(web, data, worker)
    finally:
        if worker is not None:
            worker.stop()
        flush()  # type: ignore[operator]
        unseed(data)
    rate = run.created / run.seconds
    steady = run.rss_mb or [float("nan")]
    return [
        Figure(
            "fanout",
            f"{subscribers:,} subscribers: 202 to all queued",
            run.seconds,
            "s",
            load=load_average(),
            note=f"{run.created:,} created, {run.published:,} in the queues",
        ),
        Figure(
            "fanout",
            "deliveries created per second",
            rate,
            "dlv/s",
            ceiling=bulk_rate,
            ceiling_name="bulk endpoint (1000/request)",
            target=f">= {TARGET:.0%} of bulk",
            met=rate >= TARGET * bulk_rate,
            load=load_average(),
            note=f"bulk requests {[round(t * 1000) for t in bulk_times]} ms",
        ),
        Figure(
            "fanout",
            "fan-out worker RSS, peak vs after the first chunk",
            max(steady),
            "MB",
            ceiling=steady[0],
            ceiling_name="after the first chunk",
            target="flat",
            met=max(steady) - steady[0] < 50,
            load=load_average(),
            note=f"median {load.median(steady):.0f} MB over {len(steady)} samples",
        ),
    ]
