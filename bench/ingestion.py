"""(1) Ingestion and (2) bulk: the API under load, beside the bare DRF endpoint."""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass

from bench import load
from bench.env import analyze, load_average
from bench.procs import LOG_DIR, Web
from bench.report import Figure
from bench.seed import Seed
from harness.serving import Gunicorn, Nginx

API_PATH = "/api/v1/notifications"
BARE_PATH = "/bench/notifications"
# gunicorn's threads per process in the production arrangement (config/gunicorn.py's default).
WEB_THREADS = 4
# The overload step's client connections: enough that the client never limits the offered rate.
OVERLOAD_CONNECTIONS = 256


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


def _peak(url: str, seed: Seed, path: str, cfg: IngestionConfig, *, auth: bool) -> load.LoadResult:
    if load.have_wrk():
        return load.wrk(
            url,
            path,
            api_key=seed.api_key if auth else None,
            template=seed.template,
            recipients=seed.recipients,
            connections=cfg.connections,
            seconds=cfg.seconds,
        )
    headers = {"Authorization": f"Bearer {seed.api_key}"} if auth else {}
    return load.closed(
        url,
        path,
        headers=headers,
        body_fn=lambda i: single_body(seed, i),
        seconds=cfg.seconds,
        connections=cfg.connections,
    )


def _paced(url: str, seed: Seed, rate: float, seconds: int, connections: int) -> load.LoadResult:
    result, _bodies = load.paced(
        url,
        API_PATH,
        headers={"Authorization": f"Bearer {seed.api_key}"},
        body_fn=lambda i: single_body(seed, i),
        rate=rate,
        seconds=seconds,
        connections=connections,
    )
    return result


@dataclass
class Servers:
    """The production arrangement (nginx -> gunicorn, as the Procfile and compose run it, with
    the bench's uvicorn behind /ws/), and the servers the bare endpoint is compared on."""

    proxy: Nginx
    started: list[Gunicorn | Nginx]
    bare: dict[str, str]  # server description -> URL

    @classmethod
    def start(cls, web: Web) -> Servers:
        gthread = Gunicorn(web.env, workers=web.workers, threads=WEB_THREADS, log_dir=LOG_DIR)
        sync = Gunicorn(
            web.env, workers=web.workers, threads=1, name="gunicorn-sync", log_dir=LOG_DIR
        )
        proxy = Nginx(rest=f"127.0.0.1:{gthread.port}", ws=f"127.0.0.1:{web.port}", log_dir=LOG_DIR)
        w = web.workers
        bare = {
            f"uvicorn --workers {w}": web.url,
            f"gunicorn -w {w} --threads {WEB_THREADS} (gthread)": gthread.url,
            f"gunicorn -w {w} (sync)": sync.url,
        }
        return cls(proxy=proxy, started=[proxy, gthread, sync], bare=bare)

    def stop(self) -> None:
        for proc in self.started:
            proc.stop()


def run_ingestion(
    web: Web, seed: Seed, cfg: IngestionConfig, flush: object
) -> tuple[list[Figure], dict[str, object]]:
    """The bare endpoint on uvicorn, gunicorn gthread and gunicorn sync (the best is the
    ceiling); then the API through the production arrangement alternating with the bare
    endpoint on its best server and through the same arrangement (`repeats` times; the target
    is against the latter, the issue's "same server"); the API paced at half its median peak; and
    a 2x overload step (admitted p99, share shed, nothing accepted lost)."""
    from django.conf import settings

    from apps.deliveries.models import Notification

    servers = Servers.start(web)
    try:
        short = IngestionConfig(seconds=2, connections=cfg.connections)
        servers_rps: dict[str, float] = {}
        for name, url in servers.bare.items():
            flush()  # type: ignore[operator]
            _peak(url, seed, BARE_PATH, short, auth=False)  # warm (imports, connections, caches)
            servers_rps[name] = _peak(url, seed, BARE_PATH, cfg, auth=False).rps
        best = max(servers_rps, key=lambda name: servers_rps[name])
        best_url = servers.bare[best]
        # The arrangement admits ADMISSION_MAX_IN_FLIGHT requests per process at once: offered one
        # connection per admitted slot. More connections in a closed loop measure the shedding
        # (every 503 returns at once and is re-sent at once), which the overload step measures
        # open-loop instead.
        slots = web.workers * max(1, int(settings.ADMISSION_MAX_IN_FLIGHT))
        api_cfg = IngestionConfig(seconds=cfg.seconds, connections=slots)
        _peak(servers.proxy.url, seed, API_PATH, short, auth=True)
        _peak(servers.proxy.url, seed, BARE_PATH, short, auth=False)
        api: list[load.LoadResult] = []
        bare: list[load.LoadResult] = []
        # The bare endpoint through the very arrangement the API is served by (nginx -> the same
        # gunicorn, its admission, one connection per admitted slot): the "same server".
        same: list[load.LoadResult] = []
        loads: list[str] = []
        for _ in range(cfg.repeats):
            flush()  # type: ignore[operator]
            bare.append(_peak(best_url, seed, BARE_PATH, cfg, auth=False))
            analyze()  # as autovacuum would: statistics for the rows the last runs wrote
            same.append(_peak(servers.proxy.url, seed, BARE_PATH, api_cfg, auth=False))
            analyze()
            api.append(_peak(servers.proxy.url, seed, API_PATH, api_cfg, auth=True))
            loads.append(load_average())
        api_rps = load.median([r.rps for r in api])
        bare_rps = load.median([r.rps for r in bare])
        same_rps = load.median([r.rps for r in same])
        flush()  # type: ignore[operator]
        half_rate = max(1.0, api_rps / 2)
        half: list[load.LoadResult] = []
        for _ in range(cfg.repeats):
            analyze()
            half.append(_paced(servers.proxy.url, seed, half_rate, cfg.half_seconds, 64))
        # The 2xx answers alone: a fast 503 must not make the p99 look good (and any 503 at half
        # the peak fails the goal below).
        half_p99 = load.median([r.p99_ok_ms for r in half])
        half_shed = sum(r.statuses.get(503, 0) for r in half)
        flush()  # type: ignore[operator]
        over_rate = max(2.0, api_rps * 2)
        analyze()
        created_before = Notification.objects.filter(client_id=seed.client_id).count()
        over = _paced(servers.proxy.url, seed, over_rate, cfg.half_seconds, OVERLOAD_CONNECTIONS)
        created = Notification.objects.filter(client_id=seed.client_id).count() - created_before
        shed = over.statuses.get(503, 0)
        other = over.requests - over.ok - shed
        shed_share = shed / over.requests if over.requests else float("nan")
    finally:
        servers.stop()
    errors = sum(r.errors for r in api + bare + same + half)
    tool = api[0].tool
    arrangement = (
        f"nginx -> gunicorn -w {web.workers} --threads {WEB_THREADS} (the Procfile's web, "
        f"ADMISSION_MAX_IN_FLIGHT={settings.ADMISSION_MAX_IN_FLIGHT}, "
        f"ADMISSION_MAX_QUEUE_MS={settings.ADMISSION_MAX_QUEUE_MS:g})"
    )
    figures = [
        Figure(
            "ingestion",
            "POST /notifications req/s (nginx -> gunicorn)",
            api_rps,
            "req/s",
            ceiling=same_rps,
            ceiling_name="bare DRF on the same server",
            target=">= 60% of bare",
            met=api_rps >= 0.6 * same_rps,
            load=loads[-1],
            note=(
                f"{tool}, {cfg.seconds}s x {cfg.repeats} (median); API and bare both through "
                f"{arrangement}, {api_cfg.connections} connections (one per admitted slot), API "
                f"runs {[round(r.rps) for r in api]}, non-2xx {[r.errors for r in api]}, bare runs "
                f"{[round(r.rps) for r in same]}, non-2xx {[r.errors for r in same]}"
            ),
        ),
        Figure(
            "ingestion",
            "POST /notifications req/s beside bare's best",
            api_rps,
            "req/s",
            ceiling=bare_rps,
            ceiling_name=f"bare DRF on {best}",
            load=loads[-1],
            note=(
                f"the ceiling: bare directly "
                f"on its best server, {cfg.connections} connections, runs "
                f"{[round(r.rps) for r in bare]}; bare on "
                f"each server (one run each): "
                + ", ".join(f"{k} {v:.0f} req/s" for k, v in servers_rps.items())
                + f"; non-2xx/errors over all runs: {errors}"
            ),
        ),
        Figure(
            "ingestion",
            "p50 at peak",
            load.median([r.p50_ms for r in api]),
            "ms",
            ceiling=load.median([r.p50_ms for r in same]),
            ceiling_name="bare, same server",
        ),
        Figure(
            "ingestion",
            "p99 at peak",
            load.median([r.p99_ms for r in api]),
            "ms",
            ceiling=load.median([r.p99_ms for r in same]),
            ceiling_name="bare, same server",
        ),
        Figure(
            "ingestion",
            f"p99 at half peak ({half_rate:.0f}/s)",
            half_p99,
            "ms",
            target="< 50 ms (2xx), none shed",
            met=half_p99 < 50 and half_shed == 0,
            load=load_average(),
            note=(
                f"paced open loop through nginx at {half_rate:.0f} req/s for {cfg.half_seconds}s "
                f"x {cfg.repeats}; p99 of the 2xx; p50 of all "
                f"{load.median([r.p50_ms for r in half]):.1f} ms; 2xx p99 runs "
                f"{[round(r.p99_ok_ms, 1) for r in half]}; {half_shed} shed; statuses "
                f"{[r.statuses for r in half]}"
            ),
        ),
        Figure(
            "ingestion",
            f"2x overload ({over_rate:.0f}/s): admitted p99",
            over.p99_ok_ms,
            "ms",
            target="< 250 ms",
            met=over.p99_ok_ms < 250 and other == 0 and created == over.ok,
            load=load_average(),
            note=(
                f"paced open loop through nginx at twice the peak for {cfg.half_seconds}s, "
                f"{OVERLOAD_CONNECTIONS} connections; {over.requests} sent: {over.ok} admitted "
                f"(202), {shed} shed (503 + Retry-After, {shed_share:.0%}), {other} other; "
                f"notifications created {created} (must equal the 202s: nothing accepted is "
                f"lost, nothing shed was created); p50 of all {over.p50_ms:.1f} ms, p99 of all "
                f"{over.p99_ms:.1f} ms"
            ),
        ),
        Figure("ingestion", "2x overload: share shed", shed_share * 100, "%", load=load_average()),
    ]
    raw = {
        "servers_bare_rps": servers_rps,
        "api": [r.__dict__ for r in api],
        "bare": [r.__dict__ for r in bare],
        "bare_same_server": [r.__dict__ for r in same],
        "half": [r.__dict__ for r in half],
        "overload": {**over.__dict__, "created": created},
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
