"""`make chaos`: a burst of notifications over every channel while things break; then account
for every one of them.

    python -m bench.chaos [--notifications 50000] [--fault-scale 1.0]

Faults (times from the start of the burst, scaled by --fault-scale):
  (a) the email simulator times out for 30 s, then answers 503 for 30 s;
  (b) the email worker is killed with SIGKILL and restarted;
  (c) the Redis database in use is flushed (FLUSHDB) once;
  (d) the SMS simulator answers 429 with Retry-After for a share of requests, all run long;
and every simulator answers after a provider latency (--latency-ms 200 --jitter-ms 100: 100-300
ms, as real providers do; 0 for none).
Exit status 1 if anything is lost (or the run does not settle).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench import load
from bench.accounting import Account, account, status_counts, unfinished
from bench.calibration import calibrate
from bench.env import load_average, process_env, stamp, uptime
from bench.faults import Faults
from bench.procs import Beat, Proc, Simulator, Web, Worker, install_signal_handlers, stop_all

CHANNELS = ["email", "sms", "push", "inapp"]
# The simulator serving each channel, when the project has it (else the console provider).
SIMULATED = {"email": "sendgrid", "sms": "twilio", "push": "fcm"}
# The drain time to compare with (bench/README.md): 50,000 notifications, providers at 0 ms.
PREVIOUS_DRAIN = (277.0, 50_000, "2026-11-30, simulators answering at once")


@dataclass
class ChaosConfig:
    notifications: int = 50_000
    batch: int = 100  # recipients per API request (one channel per request)
    connections: int = 8
    fault_scale: float = 1.0
    settle_timeout: float = 1800.0
    sms_429_share: float = 0.2
    provider_ms: float = 0.0  # every simulator's latency for the whole run (make chaos: 200)
    provider_jitter_ms: float = 0.0
    web_workers: int = 2
    recipients: int = 1000
    log: Any = print
    timeline: list[str] = field(default_factory=list)


def available_simulators() -> set[str]:
    from simulators.__main__ import PROVIDERS

    return set(PROVIDERS)


def chaos_env(base: dict[str, str], sims: dict[str, Simulator], cfg: ChaosConfig) -> dict[str, str]:
    """Short repair intervals so the run settles in minutes, and providers at the simulators."""
    env = dict(base)
    env.pop("QUEUE_DEPTH_LIMIT", None)  # the service's own backpressure bound applies
    grace = max(5, round(15 * cfg.fault_scale))
    env.update(
        {
            "RECONCILE_EVERY_SECONDS": str(max(1.0, 3 * cfg.fault_scale)),
            "RECONCILE_AFTER_SECONDS": str(grace),
            # The killed worker's sends in flight are re-sent after this (provider timeout 3 s).
            "SEND_STUCK_AFTER_SECONDS": str(max(10, round(60 * cfg.fault_scale))),
            "RELEASE_EVERY_SECONDS": "2",
            "RETRY_BASE_SECONDS": "1",
            "RETRY_CAP_SECONDS": str(max(5, round(15 * cfg.fault_scale))),
            "EMAIL_MAX_ATTEMPTS": "12",
            "SMS_MAX_ATTEMPTS": "12",
            "PUSH_MAX_ATTEMPTS": "12",
            "INAPP_MAX_ATTEMPTS": "12",
            "PROVIDER_TIMEOUT_SECONDS": "3",
            # A batch stops starting sends after 2 s: with the 3 s timeout, a send stays in
            # `sending` at most 5 s, well inside the stuck deadline above.
            "SEND_BATCH_SECONDS": "2",
            "BREAKER_OPEN_SECONDS": str(max(2.0, 10 * cfg.fault_scale)),
        }
    )
    if "email" in sims:
        env.update({"SENDGRID_API_URL": sims["email"].url, "SENDGRID_API_KEY": "SG.chaos"})
    if "sms" in sims:
        env.update(
            {
                "TWILIO_API_URL": sims["sms"].url,
                "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
                "TWILIO_AUTH_TOKEN": "chaos-token",
                "TWILIO_FROM": "+15550000000",
                # Never called by the simulator; it carries the delivery id to its records.
                "TWILIO_STATUS_CALLBACK_URL": "http://127.0.0.1:9/webhooks/twilio/status",
            }
        )
    if "push" in sims:
        env.update({"FCM_API_URL": sims["push"].url, "FCM_PROJECT_ID": "chaos-project"})
    return env


# --- the burst ----------------------------------------------------------------------------


@dataclass
class Burst:
    accepted: dict[str, int] = field(default_factory=dict)  # notification id -> deliveries
    requests: int = 0
    retried: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failed: int = 0
    seconds: float = 0.0


async def _burst(url: str, api_key: str, bodies: list[bytes], connections: int) -> Burst:
    host, port = url.removeprefix("http://").split(":")
    result = Burst()
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for item in enumerate(bodies):
        queue.put_nowait(item)
    started = time.monotonic()

    async def client() -> None:
        conn = await load._open(host, int(port))
        while not queue.empty():
            index, body = queue.get_nowait()
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
                    result.accepted[data["id"]] = len(json.loads(body)["recipients"])
                    break
                # 503/429 carry Retry-After; anything else: back off and retry the same key.
                await asyncio.sleep(min(5.0, 0.5 * (attempt + 1)))
            else:
                result.failed += 1

    await asyncio.gather(*(client() for _ in range(connections)))
    result.seconds = time.monotonic() - started
    return result


def burst_bodies(recipients: list[str], template: str, cfg: ChaosConfig) -> list[bytes]:
    bodies = []
    sent = 0
    index = 0
    while sent < cfg.notifications:
        size = min(cfg.batch, cfg.notifications - sent)
        start = (index * cfg.batch) % len(recipients)
        chunk = [recipients[(start + j) % len(recipients)] for j in range(size)]
        bodies.append(
            json.dumps(
                {
                    "recipients": chunk,
                    "template": template,
                    "variables": {"order_id": f"C-{index}"},
                    "channels": [CHANNELS[index % len(CHANNELS)]],
                }
            ).encode()
        )
        sent += size
        index += 1
    return bodies


# --- the run ------------------------------------------------------------------------------


@dataclass
class ChaosResult:
    account: Account
    burst: Burst
    drain_seconds: float
    settled: bool
    timeline: list[str]

    @property
    def ok(self) -> bool:
        return self.settled and self.account.lost == 0 and self.burst.failed == 0


def start_workers(env: dict[str, str]) -> dict[str, Worker]:
    from notifier.queues import MAINTENANCE_QUEUE, TIMERS_QUEUE, channel_queues

    workers = {
        channel: Worker(
            env,
            queues=channel_queues(channel),
            pool="threads",
            concurrency=8 if channel == "email" else 4,
            name=f"chaos-{channel}",
        )
        for channel in CHANNELS
    }
    # As the Procfile runs them: releases and digest closes on their own worker.
    workers["timers"] = Worker(
        env, queues=[TIMERS_QUEUE], pool="solo", concurrency=1, name="chaos-timers"
    )
    workers["maintenance"] = Worker(
        env, queues=[MAINTENANCE_QUEUE], pool="solo", concurrency=1, name="chaos-maintenance"
    )
    return workers


def run(cfg: ChaosConfig, base_env: dict[str, str]) -> ChaosResult:
    """Start everything, burst, break things, settle, account. Stops what it started."""
    from apps.core.broker import redis_client
    from bench.seed import seed, unseed

    log = cfg.log
    r = redis_client(base_env["REDIS_URL"])
    r.flushdb()
    have = available_simulators()
    sims = {
        channel: Simulator(provider, base_env)
        for channel, provider in SIMULATED.items()
        if provider in have
    }
    started: list[Proc] = list(sims.values())
    data = None
    result: ChaosResult | None = None
    try:
        env = chaos_env(base_env, sims, cfg)
        data = seed(recipients=cfg.recipients, label="chaos")
        web = Web(env, workers=cfg.web_workers, name="chaos-web")
        started.append(web)
        workers = start_workers(env)
        started += list(workers.values())
        beat = Beat(env)
        started.append(beat)
        log(f"simulated channels: {sorted(sims)}; console: {sorted(set(CHANNELS) - set(sims))}")
        bodies = burst_bodies(data.recipients, data.template, cfg)
        faults = Faults(cfg, sims, workers, r)
        t0 = time.monotonic()
        faults.t0 = t0
        faults.start()
        burst = asyncio.run(_burst(web.url, data.api_key, bodies, cfg.connections))
        accepted = sum(burst.accepted.values())
        log(
            f"burst: {accepted:,} notifications accepted in {burst.seconds:.1f}s "
            f"({accepted / max(burst.seconds, 0.001):,.0f}/s, {burst.requests} requests, "
            f"statuses {burst.statuses}, {burst.failed} given up)"
        )
        faults.join()
        if faults.error is not None:
            raise faults.error
        started += [w for w in workers.values() if w not in started]
        ids = list(burst.accepted)
        deadline = t0 + cfg.settle_timeout
        last_log = 0.0
        settled = False
        while time.monotonic() < deadline:
            left = unfinished(ids)
            if left == 0:
                settled = True
                break
            if time.monotonic() - last_log > 10:
                counts = status_counts(ids)
                log(f"t+{time.monotonic() - t0:5.0f}s  not final: {left:,}  {dict(counts)}")
                last_log = time.monotonic()
            time.sleep(1)
        drain = time.monotonic() - t0
        # Let any in-flight duplicate reach a simulator before reading the records.
        time.sleep(2)
        records = {channel: sim.requests() for channel, sim in sims.items()}
        result = ChaosResult(
            account(ids, accepted, records), burst, drain, settled, list(cfg.timeline)
        )
        return result
    finally:
        for proc in reversed(started):
            proc.stop(timeout=10)
        if result is not None and result.ok:
            unseed(data)
        elif data is not None:
            log(f"kept the run's rows for inspection: client id {data.client_id}")


def provider_latency(cfg: ChaosConfig) -> str:
    if cfg.provider_ms <= 0:
        return "0 ms"
    low, high = (
        max(0.0, cfg.provider_ms - cfg.provider_jitter_ms),
        cfg.provider_ms + cfg.provider_jitter_ms,
    )
    return f"{low:.0f}-{high:.0f} ms"


def previous_drain() -> str:
    seconds, notifications, when = PREVIOUS_DRAIN
    return f"{seconds:.0f}s for {notifications:,} ({when})"


def report(result: ChaosResult, cfg: ChaosConfig) -> str:
    a = result.account
    lines = [
        f"notifications {cfg.notifications:,} (one recipient x one channel each, sent as "
        f"{a.notifications:,} accepted API requests of up to {cfg.batch} recipients); "
        f"deliveries in db {a.deliveries:,} of {a.expected_deliveries:,} accepted",
        f"burst {result.burst.seconds:.1f}s "
        f"({a.expected_deliveries / max(result.burst.seconds, 0.001):,.0f} notifications/s "
        f"accepted), API statuses {result.burst.statuses}, retried requests "
        f"{result.burst.retried}, given up {result.burst.failed}",
        f"delivered {a.delivered:,}",
        f"dead {a.dead:,}  reasons {dict(a.dead_reasons)}",
        f"skipped {a.skipped:,}",
        f"digested {a.digested:,} (sent inside their digest)",
        f"duplicated {a.duplicated:,}",
        f"lost {a.lost:,}",
        f"time to drain {result.drain_seconds:.1f}s (settled: {'yes' if result.settled else 'NO'})"
        f" at provider latency {provider_latency(cfg)}; previous: {previous_drain()}",
        "per channel: "
        + "; ".join(
            f"{c} {dict(v)} [{a.evidence.get(c, '')}]" for c, v in sorted(a.by_channel.items())
        ),
        f"final statuses in db: {dict(a.db_status)}",
    ]
    if a.lost_examples:
        lines.append(f"lost examples: {a.lost_examples}")
    lines.append("timeline:")
    lines += [f"  {t}" for t in result.timeline]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--notifications", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--fault-scale", type=float, default=1.0)
    parser.add_argument("--settle-timeout", type=float, default=1800.0)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--jitter-ms", type=float, default=100.0)
    args = parser.parse_args()
    from bench.env import setup_django

    setup_django()
    install_signal_handlers()
    cfg = ChaosConfig(
        notifications=args.notifications,
        batch=args.batch,
        fault_scale=args.fault_scale,
        settle_timeout=args.settle_timeout,
        web_workers=args.web_workers,
        provider_ms=args.latency_ms,
        provider_jitter_ms=args.jitter_ms,
        log=lambda text: print(text, flush=True),
    )
    print(f"make chaos at {stamp()}; {uptime()}", flush=True)
    calibration = calibrate()
    print(calibration.describe(), flush=True)
    run_id = uuid.uuid4().hex[:8]
    try:
        result = run(cfg, process_env())
    finally:
        stop_all()
    print()
    print(f"=== make chaos {run_id}, finished {stamp()}; load average {load_average()}")
    print(f"before the run: {calibration.describe()}")
    print(f"after the run:  {calibrate().describe()}")
    print(report(result, cfg))
    print("RESULT: " + ("OK, nothing lost" if result.ok else "FAILED"))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
