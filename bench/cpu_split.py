"""Where the CPU of an ingestion run goes, per process: `POST /api/v1/notifications` through
the production arrangement (nginx -> gunicorn gthread) beside the bare endpoint on the same
gunicorn, each phase's CPU time divided by the requests it answered.

    python -m bench.cpu_split [--seconds 10] [--rounds 3] [--connections 8]

Per phase and round, the CPU time (user + system, from /proc) of: the gunicorn processes (master
and workers), nginx, the PostgreSQL backends serving this database, PostgreSQL's shared
processes (WAL writer, checkpointer, background writer: every database's), the Redis server
(every database's), this process (the asyncio load client), and the whole machine (/proc/stat).
The shared ones also count whatever else ran on the machine meanwhile: read them beside the
load average. Medians over the rounds; the two phases alternate.

As `make bench` it needs DATABASE_URL (PostgreSQL) and REDIS_URL, writes a fresh client's rows
(deleted at the end) and FLUSHDBs that Redis database: never point it at production.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench import load
from bench.env import analyze, load_average, process_env, setup_django, uptime
from bench.ingestion import API_PATH, BARE_PATH, WEB_THREADS, single_body
from bench.procs import LOG_DIR, install_signal_handlers, stop_all
from harness.processes import free_port, group_pids
from harness.serving import Gunicorn, Nginx

TICK = os.sysconf("SC_CLK_TCK")
GROUPS = ("gunicorn", "nginx", "pg backends", "pg shared", "redis", "client")


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (0 if it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_seconds() -> float:
    """CPU time the whole machine spent busy (every state but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / TICK


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


@dataclass
class Pids:
    """The processes of each group, found again at every snapshot (connections come and go)."""

    gunicorn: int
    nginx: int

    def find(self) -> dict[str, list[int]]:
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as own:
            backends = [
                row[0]
                for row in own.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                )
            ]
        shared, redis = [], []
        for pid in _all_pids():
            comm = _comm(pid)
            if comm == "redis-server":
                redis.append(pid)
            elif comm.startswith("postgres") and any(
                name in _cmdline(pid)
                for name in ("walwriter", "checkpointer", "background writer", "wal writer")
            ):
                shared.append(pid)
        return {
            "gunicorn": group_pids(self.gunicorn),
            "nginx": group_pids(self.nginx),
            "pg backends": backends,
            "pg shared": shared,
            "redis": redis,
        }


def snapshot(pids: Pids) -> dict[str, dict[int, float]]:
    found = pids.find()
    out = {group: {pid: cpu_seconds(pid) for pid in members} for group, members in found.items()}
    out["client"] = {0: time.process_time()}
    out["machine"] = {0: machine_seconds()}
    return out


def delta(
    before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]
) -> dict[str, float]:
    """CPU seconds per group between two snapshots; a process that appeared meanwhile counts
    from 0 (a backend opened during the phase), one that went away is not counted."""
    return {
        group: sum(value - before.get(group, {}).get(pid, 0.0) for pid, value in now.items())
        for group, now in after.items()
    }


def phase(
    pids: Pids, run: Callable[[], load.LoadResult]
) -> tuple[load.LoadResult, dict[str, float]]:
    """Run one load phase; its CPU seconds per group."""
    before = snapshot(pids)
    result = run()
    after = snapshot(pids)
    return result, delta(before, after)


def per_request_ms(cpu: dict[str, float], result: load.LoadResult) -> dict[str, float]:
    """Per accepted request (2xx): a shed 503 costs little, and is counted in the phase's
    output beside it."""
    return {group: seconds / max(1, result.ok) * 1000 for group, seconds in cpu.items()}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_split", description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8, help="API (one per admitted slot)")
    parser.add_argument("--bare-connections", type=int, default=16)
    parser.add_argument("--web-workers", type=int, default=2)
    args = parser.parse_args()
    setup_django()
    install_signal_handlers()
    from apps.core.broker import redis_client
    from bench.seed import seed, unseed

    print(f"cpu_split at {uptime()}", flush=True)
    env = process_env()
    flush = redis_client(env["REDIS_URL"]).flushdb
    data = seed(recipients=1000, label="cpu-split")
    try:
        gunicorn = Gunicorn(env, workers=args.web_workers, threads=WEB_THREADS, log_dir=LOG_DIR)
        # /ws/ is not measured: its upstream is an address where nothing listens.
        proxy = Nginx(
            rest=f"127.0.0.1:{gunicorn.port}", ws=f"127.0.0.1:{free_port()}", log_dir=LOG_DIR
        )
        pids = Pids(gunicorn=gunicorn.pid, nginx=proxy.pid)
        headers = {"Authorization": f"Bearer {data.api_key}"}

        def api(seconds: int) -> load.LoadResult:
            return load.closed(
                proxy.url, API_PATH, headers=headers, body_fn=lambda i: single_body(data, i),
                seconds=seconds, connections=args.connections,
            )  # fmt: skip

        def bare(seconds: int) -> load.LoadResult:
            return load.closed(
                gunicorn.url, BARE_PATH, headers={}, body_fn=lambda i: single_body(data, i),
                seconds=seconds, connections=args.bare_connections,
            )  # fmt: skip

        bare(2), api(2)  # warm: imports, connections, caches
        rows: dict[str, list[dict[str, float]]] = {"api": [], "bare": []}
        rates: dict[str, list[float]] = {"api": [], "bare": []}
        for _ in range(args.rounds):
            flush()
            analyze()
            for name, run in (("bare", bare), ("api", api)):
                result, cpu = phase(pids, lambda run=run: run(args.seconds))  # type: ignore[misc]
                rows[name].append(per_request_ms(cpu, result))
                rates[name].append(result.rps)
                print(
                    f"  {name}: {result.rps:.0f} req/s, statuses {result.statuses}, "
                    f"load {load_average()}",
                    flush=True,
                )
    finally:
        stop_all()
        flush()
        unseed(data)
    print(f"\nCPU ms per request, median of {args.rounds} rounds; finished at {uptime()}")
    print(f"{'':12s} {'api':>8s} {'bare':>8s}")
    for group in (*GROUPS, "machine"):
        api_ms = statistics.median(r[group] for r in rows["api"])
        bare_ms = statistics.median(r[group] for r in rows["bare"])
        print(f"{group:12s} {api_ms:8.3f} {bare_ms:8.3f}")
    for name in ("api", "bare"):
        print(f"{name} req/s runs {[round(r) for r in rates[name]]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
