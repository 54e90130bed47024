"""(1) Ingestion and (2) bulk: the API under load, beside the bare DRF endpoint."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass

from bench import load
from bench.env import load_average
from bench.procs import Web
from bench.report import Figure
from bench.seed import Seed

API_PATH = "/api/v1/notifications"
BARE_PATH = "/bench/notifications"


@dataclass
class IngestionConfig:
    seconds: int = 10
    connections: int = 16
    repeats: int = 3
    half_seconds: int = 10
    bulk_repeats: int = 5


def single_body(seed: Seed, index: int) -> bytes:
    return json.dumps(
        {
            "recipient": seed.recipients[index % len(seed.recipients)],
            "template": seed.template,
            "variables": {"order_id": f"A-{index}"},
            "channels": ["email", "sms"],
        }
    ).encode()


def _peak(web: Web, seed: Seed, path: str, cfg: IngestionConfig, *, auth: bool) -> load.LoadResult:
    if load.have_wrk():
        return load.wrk(
            web.url,
            path,
            api_key=seed.api_key if auth else None,
            template=seed.template,
            recipients=seed.recipients,
            connections=cfg.connections,
            seconds=cfg.seconds,
        )
    headers = {"Authorization": f"Bearer {seed.api_key}"} if auth else {}
    return load.closed(
        web.url,
        path,
        headers=headers,
        body_fn=lambda i: single_body(seed, i),
        seconds=cfg.seconds,
        connections=cfg.connections,
    )


def run_ingestion(
    web: Web, seed: Seed, cfg: IngestionConfig, flush: object
) -> tuple[list[Figure], dict[str, object]]:
    """Peak req/s and latency of the API and of the bare endpoint (alternating, `repeats`
    times), then the API paced at half its median peak."""
    # Warm both paths (imports, connections, caches) before measuring.
    short = IngestionConfig(seconds=2, connections=cfg.connections)
    _peak(web, seed, BARE_PATH, short, auth=False)
    _peak(web, seed, API_PATH, short, auth=True)
    api: list[load.LoadResult] = []
    bare: list[load.LoadResult] = []
    loads: list[str] = []
    for _ in range(cfg.repeats):
        flush()  # type: ignore[operator]
        bare.append(_peak(web, seed, BARE_PATH, cfg, auth=False))
        api.append(_peak(web, seed, API_PATH, cfg, auth=True))
        loads.append(load_average())
    api_rps = load.median([r.rps for r in api])
    bare_rps = load.median([r.rps for r in bare])
    flush()  # type: ignore[operator]
    half_rate = max(1.0, api_rps / 2)
    half: list[load.LoadResult] = []
    for _ in range(cfg.repeats):
        result, _bodies = load.paced(
            web.url,
            API_PATH,
            headers={"Authorization": f"Bearer {seed.api_key}"},
            body_fn=lambda i: single_body(seed, i),
            rate=half_rate,
            seconds=cfg.half_seconds,
        )
        half.append(result)
    half_p99 = load.median([r.p99_ms for r in half])
    errors = sum(r.errors for r in api + bare + half)
    tool = api[0].tool
    figures = [
        Figure(
            "ingestion",
            "POST /notifications req/s",
            api_rps,
            "req/s",
            ceiling=bare_rps,
            ceiling_name="bare DRF",
            target=">= 50% of bare",
            met=api_rps >= 0.5 * bare_rps,
            load=loads[-1],
            note=(
                f"{tool}, {cfg.connections} connections, {cfg.seconds}s x {cfg.repeats} "
                f"(median); API runs {[round(r.rps) for r in api]}, bare runs "
                f"{[round(r.rps) for r in bare]}; non-2xx/errors over all runs: {errors}"
            ),
        ),
        Figure(
            "ingestion",
            "p50 at peak",
            load.median([r.p50_ms for r in api]),
            "ms",
            ceiling=load.median([r.p50_ms for r in bare]),
            ceiling_name="bare",
        ),
        Figure(
            "ingestion",
            "p99 at peak",
            load.median([r.p99_ms for r in api]),
            "ms",
            ceiling=load.median([r.p99_ms for r in bare]),
            ceiling_name="bare",
        ),
        Figure(
            "ingestion",
            f"p99 at half peak ({half_rate:.0f}/s)",
            half_p99,
            "ms",
            target="< 50 ms",
            met=half_p99 < 50,
            load=load_average(),
            note=(
                f"paced open loop at {half_rate:.0f} req/s for {cfg.half_seconds}s x "
                f"{cfg.repeats}; p50 {load.median([r.p50_ms for r in half]):.1f} ms; p99 runs "
                f"{[round(r.p99_ms, 1) for r in half]}"
            ),
        ),
    ]
    raw = {
        "api": [r.__dict__ for r in api],
        "bare": [r.__dict__ for r in bare],
        "half": [r.__dict__ for r in half],
    }
    return figures, raw


def post(url: str, body: bytes, api_key: str | None) -> tuple[int, bytes, float]:
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310
            payload = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        payload, status = exc.read(), exc.code
    return status, payload, time.perf_counter() - started


def bulk_body(seed: Seed, recipients: list[str], index: int, channels: list[str]) -> bytes:
    return json.dumps(
        {
            "recipients": recipients,
            "template": seed.template,
            "variables": {"order_id": f"B-{index}"},
            "channels": channels,
        }
    ).encode()


def run_bulk(web: Web, seed: Seed, cfg: IngestionConfig, flush: object) -> list[Figure]:
    """One request with 1000 recipients (email + sms): time to 202, beside the bare endpoint
    validating the same body and inserting one row."""
    recipients = seed.recipients[:1000]
    api_times: list[float] = []
    bare_times: list[float] = []
    for i in range(cfg.bulk_repeats + 1):
        flush()  # type: ignore[operator]
        body = bulk_body(seed, recipients, i, ["email", "sms"])
        status, payload, seconds = post(web.url + API_PATH, body, seed.api_key)
        if status != 202:
            raise RuntimeError(f"bulk request answered {status}: {payload[:500]!r}")
        bare_status, _, bare_seconds = post(web.url + BARE_PATH, body, None)
        if bare_status != 202:
            raise RuntimeError(f"bare bulk request answered {bare_status}")
        if i:  # the first is a warm-up
            api_times.append(seconds)
            bare_times.append(bare_seconds)
    api_s = load.median(api_times)
    bare_s = load.median(bare_times)
    return [
        Figure(
            "bulk",
            "1000 recipients x 2 channels: time to 202",
            api_s * 1000,
            "ms",
            ceiling=bare_s * 1000,
            ceiling_name="bare (validate + 1 row)",
            load=load_average(),
            note=(
                f"median of {cfg.bulk_repeats}; runs "
                f"{[round(t * 1000) for t in api_times]} ms; 2000 deliveries created and "
                "published per request"
            ),
        ),
        Figure(
            "bulk",
            "recipients accepted per second",
            len(recipients) / api_s,
            "rcpt/s",
            load=load_average(),
        ),
    ]
