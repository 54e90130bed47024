"""`make chaos`: a burst of notifications over every channel while things break; then account
for every one of them. A share of the burst uses a template that declares a short digest (the
windows close while the faults run), and a few notifications go to a topic every recipient
follows (their fan-out runs while the faults run).

    python -m bench.chaos [--notifications 50000] [--fault-scale 1.0]

Faults (times from the start of the burst, scaled by --fault-scale):
  (a) the email simulator times out for 30 s, then answers 503 for 30 s;
  (b) the email worker is killed with SIGKILL and restarted;
  (c) the Redis database in use is flushed (FLUSHDB) once;
  (d) the SMS simulator answers 429 with Retry-After for a share of requests, all run long;
and every simulator answers after a provider latency (--latency-ms 200 --jitter-ms 100: 100-300
ms, as real providers do; 0 for none).
The analytics fold runs (beat) through it all; at the end the rollup, folded to empty, must
equal a direct count over the run's timeline (bench/rollup_check.py).
Exit status 1 if anything is lost (or the run does not settle, or the rollup differs).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from bench.accounting import Account, account
from bench.burst import (
    CHANNELS,
    TOPIC,
    Burst,
    burst_bodies,
    digest_count,
    run_burst,
    timed_bodies,
)
from bench.calibration import calibrate
from bench.env import load_average, process_env, stamp, uptime
from bench.faults import Faults
from bench.procs import Beat, Proc, Simulator, Web, Worker, install_signal_handlers, stop_all
from bench.progress import status_counts, unfinished, workflow_progress, workflow_timeline
from bench.rollup_check import RollupCheck, rollup_check

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
    # The share of `notifications` sent with the digest template, `digest_batch` recipients a
    # request, always to the same first `digest_batch` recipients (so windows gather items).
    digest_share: float = 0.1
    digest_batch: int = 20
    # Notifications to the topic (every recipient but the first, the "actor", excluded).
    topic_notifications: int = 2
    log: Any = print
    timeline: list[str] = field(default_factory=list)


def digest_window(cfg: ChaosConfig) -> int:
    """The digest template's window in seconds: 15 s at full scale, so that windows close
    through the kill and the flush."""
    return max(5, round(15 * cfg.fault_scale))


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
            # Fan-outs in chunks of 100 (many commits, publishes and continuations while the
            # faults run); one whose continuation the flush took is resumed after this.
            "FANOUT_CHUNK_SIZE": "100",
            # A run hands over to its continuation (a message through Redis) every half second.
            "FANOUT_SLICE_SECONDS": "0.5",
            "FANOUT_STALL_SECONDS": str(max(5, round(30 * cfg.fault_scale))),
            "FANOUT_RESUME_EVERY_SECONDS": str(max(1.0, 3 * cfg.fault_scale)),
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


# --- the run ------------------------------------------------------------------------------


@dataclass
class ChaosResult:
    account: Account
    burst: Burst
    drain_seconds: float
    settled: bool
    timeline: list[str]
    # The analytics rollup folded to empty, against a direct count (None: not checked).
    rollup: RollupCheck | None = None

    @property
    def ok(self) -> bool:
        return (
            self.settled
            and self.account.lost == 0
            and self.account.unexpected == 0
            and self.burst.failed == 0
            and (self.rollup is None or self.rollup.ok)
        )


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
    from bench.seed import seed, seed_digest_template, subscribe_all, unseed

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
        digest_template = seed_digest_template(data, window=f"{digest_window(cfg)}s")
        if cfg.topic_notifications:
            subscribe_all(data, topic=TOPIC)
        web = Web(env, workers=cfg.web_workers, name="chaos-web")
        started.append(web)
        workers = start_workers(env)
        started += list(workers.values())
        beat = Beat(env)
        started.append(beat)
        log(f"simulated channels: {sorted(sims)}; console: {sorted(set(CHANNELS) - set(sims))}")
        bodies = burst_bodies(data, cfg, digest_template)
        timed = timed_bodies(data, cfg, digest_template)
        faults = Faults(cfg, sims, workers, r)
        t0 = time.monotonic()
        wall0 = time.time()
        faults.t0 = t0
        faults.start()
        burst = run_burst(web.url, data.api_key, bodies, cfg.connections, timed)
        accepted = sum(burst.accepted.values())
        log(
            f"burst: {accepted:,} deliveries accepted ({len(bodies)} requests in "
            f"{burst.seconds:.1f}s, {len(timed)} digest and topic requests timed over "
            f"{burst.timed_seconds:.1f}s; {burst.requests} tries, statuses {burst.statuses}, "
            f"{burst.failed} given up)"
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
                log(
                    f"t+{time.monotonic() - t0:5.0f}s  not final: {left:,}  {dict(counts)}  "
                    f"{workflow_progress(ids)}"
                )
                last_log = time.monotonic()
            time.sleep(1)
        drain = time.monotonic() - t0
        # Let any in-flight duplicate reach a simulator before reading the records.
        time.sleep(2)
        records = {channel: sim.requests() for channel, sim in sims.items()}
        timeline = cfg.timeline + workflow_timeline(ids, start=wall0)
        # Beat's folds ran through the faults; this process folds what is left beside them.
        rollup = rollup_check(client_id=data.client_id)
        result = ChaosResult(
            account(burst.accepted, records, burst.fan_outs),
            burst,
            drain,
            settled,
            sorted(timeline, key=lambda line: float(line.split("s", 1)[0].removeprefix("t+"))),
            rollup,
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
    fans = a.fan_outs
    plain = cfg.notifications - digest_count(cfg)
    lines = [
        f"notifications {cfg.notifications:,} (one recipient x one channel each, "
        f"{digest_count(cfg):,} of them with a template digested over {digest_window(cfg)} s, "
        f"{cfg.digest_batch} recipients a request) and {len(fans)} to topic {TOPIC} (fan-out), "
        f"sent as {a.notifications:,} accepted API requests of up to {cfg.batch} recipients; "
        f"deliveries in db {a.deliveries:,} of {a.expected_deliveries:,} accepted",
        f"burst {result.burst.seconds:.1f}s ({plain / max(result.burst.seconds, 0.001):,.0f} "
        f"notifications/s accepted, the {plain:,} sent as fast as accepted; the digest and topic "
        f"requests timed over {result.burst.timed_seconds:.1f}s), API statuses "
        f"{result.burst.statuses}, retried requests {result.burst.retried}, given up "
        f"{result.burst.failed}",
        f"delivered {a.delivered:,}",
        f"dead {a.dead:,}  reasons {dict(a.dead_reasons)}",
        f"skipped {a.skipped:,}",
        f"digested {a.digested:,} (delivered through their digest; through a dead or skipped "
        f"digest: {dict(a.digested_other)})",
        f"digests {a.digests.total():,}: sent {a.digests['sent']:,}, empty {a.digests['empty']:,}"
        f", never closed {a.digests['open']:,}; their deliveries: "
        + ", ".join(
            f"{k} {a.digest_deliveries[k]:,}"
            for k in ("delivered", "dead", "skipped", "duplicated", "lost")
        ),
        f"fan-out {len(fans)} topic notifications: expected {sum(f.expected for f in fans):,}, "
        f"created {sum(f.created for f in fans):,}, in db {sum(f.in_db for f in fans):,}, "
        f"missing {sum(f.missing for f in fans):,}, unexpected {sum(f.unexpected for f in fans):,}"
        f", finished {sum(f.finished for f in fans)}/{len(fans)}",
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
    if result.rollup is not None:
        lines.append(result.rollup.describe())
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
    parser.add_argument("--digest-share", type=float, default=0.1)
    parser.add_argument("--topic-notifications", type=int, default=2)
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
        digest_share=args.digest_share,
        topic_notifications=args.topic_notifications,
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
