"""`make bench`: start what is needed, measure, stop it, print figures beside ceilings.

python -m bench [--only ingestion,bulk,pipeline,inapp,analytics] [--repeats 3] [--seconds 10]
python -m bench --only fanout [--fanout-subscribers 100000]   (not in the default set: slow)
python -m bench --only pipeline --webhook-receiver-sleep 5   (a webhook receiver sleeping 5 s;
                                                              0: one answering at once)
python -m bench --only pipeline --analytics-overhead   (also: the analytics fold on vs off)
python -m bench --only analytics-fold --backlog 2000   (the analytics fold on vs off alone)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time

from bench.calibration import calibrate
from bench.env import ROOT, load_average, process_env, setup_django, stamp, uptime
from bench.pacing import PACE_FRACTION
from bench.procs import install_signal_handlers


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", default="ingestion,bulk,pipeline,inapp,analytics")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", 2)))
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", default="threads")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument(
        "--inapp-rate",
        type=float,
        default=None,
        help="in-app notifications per second (paced); default: --pace-fraction of the "
        "in-app path's capacity measured in the run",
    )
    parser.add_argument(
        "--pace-fraction",
        type=float,
        default=PACE_FRACTION,
        help="latency figures are paced at this share of the capacity measured in the run",
    )
    parser.add_argument(
        "--provider-ms",
        type=float,
        default=200.0,
        help="the pipeline is also drained with the simulator answering after this (0: not)",
    )
    parser.add_argument("--provider-jitter-ms", type=float, default=50.0)
    parser.add_argument("--fanout-subscribers", type=int, default=100_000)
    parser.add_argument(
        "--webhook-receiver-sleep",
        type=float,
        default=None,
        help="pipeline: with a webhook endpoint (delivery.sent) whose receiver on 127.0.0.1 "
        "sleeps this many seconds per request (0: answers at once), and a webhooks worker "
        "(not given: no endpoint)",
    )
    parser.add_argument(
        "--analytics-overhead",
        action="store_true",
        help="pipeline: also drain the backlog with the analytics fold running beside the "
        "workers and with ANALYTICS_ENABLED off, alternating; the ratio of the rates",
    )
    parser.add_argument(
        "--analytics-templates",
        type=int,
        default=4,
        help="analytics: templates in the seeded month of rollups (each x 4 channels x A/B)",
    )
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if args.webhook_receiver_sleep is not None:
        # The receiver listens on 127.0.0.1: allowed beside BENCH_ENDPOINTS only (notifier.W003),
        # in this process (registration) and in those it starts (process_env copies it).
        os.environ["WEBHOOKS_ALLOW_PRIVATE"] = "1"

    setup_django()
    install_signal_handlers()
    from apps.core.broker import redis_client
    from bench.ingestion import IngestionConfig, run_bulk, run_ingestion
    from bench.pipeline import PipelineConfig, run_pipeline
    from bench.procs import Simulator, Web, stop_all
    from bench.report import Figure, table
    from bench.seed import seed, unseed

    print(f"make bench at {stamp()}; {uptime()}", flush=True)
    calibration_before = calibrate()
    print(calibration_before.describe(), flush=True)
    env = process_env()
    r = redis_client(env["REDIS_URL"])
    figures: list[Figure] = []
    raw: dict[str, object] = {
        "started": stamp(),
        "uptime_before": uptime(),
        "calibration_before": calibration_before.__dict__,
    }
    data = seed(recipients=max(1000, args.sockets))
    sim = Simulator("sendgrid", env)
    web = Web(
        process_env(SENDGRID_API_URL=sim.url, SENDGRID_API_KEY="SG.bench"),
        workers=args.web_workers,
    )
    try:
        cfg = IngestionConfig(
            seconds=args.seconds, connections=args.connections, repeats=args.repeats
        )
        if "ingestion" in only:
            found, raw["ingestion"] = run_ingestion(web, data, cfg, r.flushdb)
            figures += found
            print(table(figures), flush=True)
        if "bulk" in only:
            figures += run_bulk(web, data, cfg, r.flushdb)
            print(table(figures[-2:]), flush=True)
        if "pipeline" in only:
            pcfg = PipelineConfig(
                backlog=args.backlog,
                workers=args.workers,
                pool=args.pool,
                concurrency=args.concurrency,
                memory_small=max(1, args.backlog // 10),
                repeats=args.repeats,
                provider_ms=args.provider_ms,
                provider_jitter_ms=args.provider_jitter_ms,
                pace_fraction=args.pace_fraction,
                analytics_overhead=args.analytics_overhead,
            )
            receiver = None
            if args.webhook_receiver_sleep is not None:
                from bench.webhooks import SlowReceiver, endpoint_register

                receiver = SlowReceiver(args.webhook_receiver_sleep)
                endpoint_register(data, receiver.url)
                pcfg.webhooks = True
            try:
                found = run_pipeline(web, data, pcfg, sim)
            finally:
                if receiver is not None:
                    receiver.stop()
            figures += found
            print(table(found), flush=True)
            if receiver is not None:
                print(
                    f"webhook receiver (sleeping {args.webhook_receiver_sleep:g} s per request) "
                    f"received {receiver.received} delivery.sent webhooks",
                    flush=True,
                )
        if "analytics-fold" in only:  # the fold on vs off alone (bench/analytics_fold.py)
            from bench.analytics_fold import fold_comparison

            wcfg = PipelineConfig(
                workers=args.workers, pool=args.pool, concurrency=args.concurrency
            )
            found = [
                fold_comparison(
                    web,
                    data,
                    wcfg,
                    process_env(SENDGRID_API_URL=sim.url, SENDGRID_API_KEY="SG.bench"),
                    r,
                    backlog=args.backlog,
                    repeats=args.repeats,
                    sim=sim,
                )
            ]
            figures += found
            print(table(found), flush=True)
        if "inapp" in only:
            if importlib.util.find_spec("apps.inbox.realtime") is None:
                print("in-app benchmark skipped: the /ws/inbox consumer is not in this tree")
            else:
                from bench.inapp import run_inapp

                found = run_inapp(
                    data,
                    args.sockets,
                    args.web_workers,
                    rate=args.inapp_rate,
                    fraction=args.pace_fraction,
                )
                figures += found
                print(table(found), flush=True)
        if "fanout" in only:
            from bench.fanout import run_fanout

            found = run_fanout(web, args.fanout_subscribers, r.flushdb)
            figures += found
            print(table(found), flush=True)
        if "analytics" in only:
            from bench.analytics import run_analytics

            found = run_analytics(web.url, data, templates=args.analytics_templates)
            figures += found
            print(table(found), flush=True)
    finally:
        stop_all()
        r.flushdb()
        unseed(data)
    calibration_after = calibrate()
    print()
    print(f"=== make bench, finished {stamp()}; {uptime()}")
    print(f"web: uvicorn --workers {args.web_workers}; load average at the end {load_average()}")
    print(f"before the run: {calibration_before.describe()}")
    print(f"after the run:  {calibration_after.describe()}")
    print(
        "ingestion: nginx -> gunicorn (the Procfile's web) beside bare on the same server "
        "and on its best"
    )
    print(table(figures))
    if args.json:
        raw["figures"] = [f.__dict__ for f in figures]
        raw["finished"] = stamp()
        raw["calibration_after"] = calibration_after.__dict__
        (ROOT / args.json).write_text(json.dumps(raw, indent=2, default=str))
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"({time.monotonic() - started:.0f}s)")
    sys.exit(code)
