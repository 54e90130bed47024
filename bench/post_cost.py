"""What one `POST /api/v1/notifications` costs, in-process and deterministic, beside the bare
endpoint: process CPU per request, SQL statements, Redis round trips, PostgreSQL backend CPU.

    python -m bench.post_cost [--requests 400] [--rounds 5] [--analyze]

Both endpoints are called through the production WSGI application (`config.wsgi`: admission,
every middleware, DRF) with the ingestion benchmark's body (one recipient, email and sms), in
one thread, no server and no client: what a wall-clock benchmark on a shared machine cannot
tell apart. Rounds alternate the two; the medians are printed. The backend CPU is PostgreSQL's
own (its processes serving this database, from /proc), read around the rounds.

`--analyze` runs ANALYZE on the tables the POST writes before each round, as autovacuum does
while tables grow. Without it, on a PostgreSQL whose autovacuum is off (this project's bench
machine), each connection keeps the foreign-key checks' plans made while the tables were nearly
empty (sequential scans), and the backend CPU per request grows with every row written.

As `make bench` it needs DATABASE_URL (PostgreSQL) and REDIS_URL, writes a fresh client's rows
(deleted at the end) and FLUSHDBs that Redis database at the end, and the broker's
(CELERY_BROKER_URL) when it is another: never point it at production. Every request must be
answered 202 (a 429 or 503 would flatter the figure): the run fails otherwise.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.env import analyze, setup_django, uptime
from bench.ingestion import API_PATH, BARE_PATH, single_body


def _environ(path: str, body: bytes, api_key: str | None) -> dict[str, Any]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "HTTP_HOST": "127.0.0.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_X_REQUEST_START": f"t={time.time():.3f}",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    if api_key:
        environ["HTTP_AUTHORIZATION"] = f"Bearer {api_key}"
    return environ


class Caller:
    """POSTs through the WSGI application; counts the statuses."""

    def __init__(self, seed: Any) -> None:
        from config.wsgi import application

        self.app, self.seed = application, seed
        self.statuses: Counter[tuple[str, str]] = Counter()
        self.n = 0

    def post(self, path: str) -> None:
        self.n += 1
        body = single_body(self.seed, self.n)
        answer: dict[str, str] = {}

        def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
            answer["status"] = status

        api_key = self.seed.api_key if path == API_PATH else None
        result = self.app(_environ(path, body, api_key), start_response)
        b"".join(result)
        close: Callable[[], None] | None = getattr(result, "close", None)
        if close is not None:
            close()
        self.statuses[(path, answer["status"][:3])] += 1


@contextmanager
def redis_round_trips() -> Iterator[list[str]]:
    """Every request written to a Redis connection meanwhile (a pipeline is one), by its first
    command."""
    import redis.connection

    sent: list[str] = []
    real = redis.connection.AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        first = command[0] if isinstance(command, list) and command else command
        sent.append(bytes(first).split(b"\r\n")[2].decode())
        return real(self, command, check_health)

    redis.connection.AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        yield sent
    finally:
        redis.connection.AbstractConnection.send_packed_command = real  # type: ignore[method-assign]


def backend_cpu_seconds() -> float | None:
    """CPU time of PostgreSQL's processes serving this database (Linux /proc), or None. Asked
    over a connection of its own (not one of the pool's, which serve the requests)."""
    import psycopg

    database = os.environ["DATABASE_URL"]
    with psycopg.connect(database, autocommit=True) as own:
        pids = [
            row[0]
            for row in own.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            )
        ]
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:  # not on this host (or gone): no figure rather than a wrong one
            return None
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def measure(caller: Caller, path: str, requests: int) -> tuple[float, float | None]:
    """(process CPU ms per request, PostgreSQL backend CPU ms per request or None)."""
    backend = backend_cpu_seconds()
    started = time.process_time()
    for _ in range(requests):
        caller.post(path)
    cpu = (time.process_time() - started) / requests * 1000
    after = backend_cpu_seconds()
    pg = None if backend is None or after is None else (after - backend) / requests * 1000
    return cpu, pg


def one_request(caller: Caller, path: str) -> tuple[list[str], list[str]]:
    """The SQL statements (first word) and Redis round trips of one warm request."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries, redis_round_trips() as sent:
        caller.post(path)
    return [q["sql"].split(" ", 1)[0] for q in queries.captured_queries], sent


def run(requests: int, rounds: int, analyze_each_round: bool) -> dict[str, Any]:
    from bench.seed import seed, unseed

    seeded = seed(recipients=200, label="post-cost")
    caller = Caller(seeded)
    try:
        for _ in range(30):  # connections, caches, compiled queries
            caller.post(BARE_PATH)
            caller.post(API_PATH)
        shape = {path: one_request(caller, path) for path in (BARE_PATH, API_PATH)}
        runs: dict[str, list[tuple[float, float | None]]] = {BARE_PATH: [], API_PATH: []}
        for _ in range(rounds):
            if analyze_each_round:
                analyze()
            for path in (BARE_PATH, API_PATH):
                runs[path].append(measure(caller, path, requests))
    finally:
        _cleanup(seeded, unseed)
    statuses_check(caller.statuses)
    result: dict[str, Any] = {"statuses": {f"{p} {s}": n for (p, s), n in caller.statuses.items()}}
    for path, name in ((BARE_PATH, "bare"), (API_PATH, "api")):
        cpu = [c for c, _ in runs[path]]
        pg = [p for _, p in runs[path] if p is not None]
        statements, redis_sent = shape[path]
        result[name] = {
            "cpu_ms": statistics.median(cpu),
            "cpu_runs_ms": [round(c, 3) for c in cpu],
            "pg_backend_cpu_ms": statistics.median(pg) if pg else None,
            "statements": statements,
            "redis_round_trips": redis_sent,
        }
    return result


def statuses_check(statuses: Counter[tuple[str, str]]) -> None:
    """Every request answered 202 (the bare endpoint's and the API's): a 429 or a 503 costs
    far less than an accepted POST and would flatter the figure."""
    other = {f"{path} {status}": n for (path, status), n in statuses.items() if status != "202"}
    if other:
        raise RuntimeError(f"not every request was accepted (202): {other}")


def databases_to_flush(redis_url: str, broker_url: str) -> list[str]:
    """The Redis databases a run writes: the service's and, when apart, the broker's (each
    POST publishes its send messages and ledger entries there)."""
    return [redis_url] if broker_url == redis_url else [redis_url, broker_url]


def _cleanup(seeded: Any, unseed: Callable[[Any], None]) -> None:
    from django.conf import settings

    from apps.benchmarks.models import BenchRow
    from apps.core.broker import redis_client

    unseed(seeded)
    BenchRow.objects.all().delete()
    for url in databases_to_flush(settings.REDIS_URL, settings.CELERY_BROKER_URL):
        redis_client(url).flushdb()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.post_cost", description=__doc__)
    parser.add_argument("--requests", type=int, default=400, help="requests per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--analyze", action="store_true", help="ANALYZE before each round")
    parser.add_argument("--json", help="also write the result to this file")
    args = parser.parse_args()
    setup_django()
    print(f"post_cost at {uptime()}")
    result = run(args.requests, args.rounds, args.analyze)
    for name in ("bare", "api"):
        row = result[name]
        pg = row["pg_backend_cpu_ms"]
        print(
            f"{name:4s} CPU {row['cpu_ms']:.3f} ms/request (runs {row['cpu_runs_ms']}), "
            f"PostgreSQL backend {'-' if pg is None else f'{pg:.3f}'} ms/request; "
            f"statements {row['statements']}; Redis round trips {row['redis_round_trips']}"
        )
    print(f"bare / api CPU: {result['bare']['cpu_ms'] / result['api']['cpu_ms']:.0%}")
    print(f"statuses: {result['statuses']}; finished at {uptime()}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(result, out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
