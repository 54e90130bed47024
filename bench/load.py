"""Load generators: wrk (C, closed loop, Lua script) for the peak, and a small asyncio client
for paced (open-loop) load, where latency counts from each request's scheduled start so a
slow server cannot hide its queueing (no coordinated omission)."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

BodyFn = Callable[[int], bytes]


@dataclass
class LoadResult:
    requests: int
    seconds: float
    ok: int
    errors: int
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int] = field(default_factory=dict)
    tool: str = ""
    # Paced runs: the p99 of the 2xx answers alone (what admitted requests saw under overload).
    p99_ok_ms: float = float("nan")

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


# --- wrk ----------------------------------------------------------------------------------

WRK_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
%(auth)s
local ids = {%(ids)s}
local n = #ids
local counter = 0
request = function()
  counter = counter + 1
  local body = '{"recipient":"' .. ids[counter %% n + 1] .. '","template":"%(template)s",' ..
    '"variables":{"order_id":"A-' .. counter .. '"},"channels":["email","sms"]}'
  return wrk.format(nil, "%(path)s", nil, body)
end
done = function(summary, latency, requests)
  io.write(string.format(
    'BENCH_JSON {"requests":%%d,"duration_us":%%d,"non2xx":%%d,"timeouts":%%d,' ..
    '"socket":%%d,"p50_us":%%d,"p99_us":%%d}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.timeout,
    summary.errors.connect + summary.errors.read + summary.errors.write,
    latency:percentile(50), latency:percentile(99)))
end
"""


def have_wrk() -> bool:
    return shutil.which("wrk") is not None


def wrk(
    url: str,
    path: str,
    *,
    api_key: str | None,
    template: str,
    recipients: list[str],
    connections: int,
    seconds: int,
) -> LoadResult:
    auth = f'wrk.headers["Authorization"] = "Bearer {api_key}"' if api_key else ""
    script = WRK_SCRIPT % {
        "auth": auth,
        # The seeded recipients' ids (the API rejects unknown ones), as a Lua table.
        "ids": ",".join(json.dumps(r) for r in recipients),
        "template": template,
        "path": path,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        script_path = f.name
    try:
        out = subprocess.run(  # noqa: S603
            [
                shutil.which("wrk") or "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "10s",
                "-s",
                script_path,
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        Path(script_path).unlink()
    line = next(ln for ln in out.splitlines() if ln.startswith("BENCH_JSON "))
    data = json.loads(line.removeprefix("BENCH_JSON "))
    errors = data["non2xx"] + data["timeouts"] + data["socket"]
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        ok=data["requests"] - data["non2xx"],
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        tool="wrk",
    )


# --- asyncio client -----------------------------------------------------------------------


# uvicorn closes a keep-alive connection idle for 5 s (its --timeout-keep-alive default): the
# paced client opens a fresh one instead of reusing one idle this long. At a low paced rate
# (under connections / 5 s, 12.8/s for 64) every reused connection had been closed, and its
# request failed (status 0) without reaching the server.
REOPEN_IDLE_AFTER = 4.0


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.used_at = time.monotonic()


async def _open(host: str, port: int) -> _Conn:
    reader, writer = await asyncio.open_connection(host, port)
    return _Conn(reader, writer)


async def _request(conn: _Conn, raw: bytes) -> tuple[int, bytes]:
    conn.writer.write(raw)
    await conn.writer.drain()
    head = await conn.reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    body = await conn.reader.readexactly(length) if length else b""
    conn.used_at = time.monotonic()
    return status, body


def build_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += ["Content-Type: application/json", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _paced(
    host: str,
    port: int,
    path: str,
    headers: dict[str, str],
    body_fn: BodyFn,
    rate: float,
    seconds: float,
    connections: int,
    reopen_idle_after: float = REOPEN_IDLE_AFTER,
) -> tuple[list[float], dict[int, int], float, list[bytes], list[float]]:
    pool: asyncio.Queue[_Conn] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await _open(host, port))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    bodies: list[bytes] = []
    ok_latencies: list[float] = []
    loop = asyncio.get_running_loop()

    async def one(index: int, scheduled: float) -> None:
        conn = await pool.get()
        if time.monotonic() - conn.used_at > reopen_idle_after:
            conn.writer.close()
            conn = await _open(host, port)
        try:
            status, body = await _request(
                conn, build_request(host, port, path, body_fn(index), headers)
            )
        except (OSError, asyncio.IncompleteReadError):
            status, body = 0, b""
            conn.writer.close()
            conn = await _open(host, port)
        latencies.append((loop.time() - scheduled) * 1000)
        if 200 <= status < 300:
            ok_latencies.append(latencies[-1])
        statuses[status] = statuses.get(status, 0) + 1
        bodies.append(body)
        pool.put_nowait(conn)

    total = int(rate * seconds)
    start = loop.time() + 0.05
    tasks = []
    for index in range(total):
        scheduled = start + index / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(index, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = loop.time() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    return latencies, statuses, elapsed, bodies, ok_latencies


def paced(
    url: str,
    path: str,
    *,
    headers: dict[str, str],
    body_fn: BodyFn,
    rate: float,
    seconds: float,
    connections: int = 64,
    reopen_idle_after: float = REOPEN_IDLE_AFTER,
) -> tuple[LoadResult, list[bytes]]:
    """Start requests at a fixed `rate` for `seconds`; latency from each scheduled start."""
    host, port = url.removeprefix("http://").split(":")
    latencies, statuses, elapsed, bodies, ok_latencies = asyncio.run(
        _paced(
            host, int(port), path, headers, body_fn, rate, seconds, connections, reopen_idle_after
        )
    )
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return (
        LoadResult(
            requests=len(latencies),
            seconds=elapsed,
            ok=ok,
            errors=len(latencies) - ok,
            p50_ms=percentile(latencies, 50),
            p99_ms=percentile(latencies, 99),
            statuses=statuses,
            tool="asyncio paced",
            p99_ok_ms=percentile(ok_latencies, 99),
        ),
        bodies,
    )


async def _closed(
    host: str,
    port: int,
    path: str,
    headers: dict[str, str],
    body_fn: BodyFn,
    seconds: float,
    connections: int,
) -> tuple[list[float], dict[int, int], float]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    counter = iter(range(10**9))

    async def client() -> None:
        conn = await _open(host, port)
        while loop.time() < deadline:
            started = loop.time()
            try:
                status, _ = await _request(
                    conn, build_request(host, port, path, body_fn(next(counter)), headers)
                )
            except (OSError, asyncio.IncompleteReadError):
                status = 0
                conn = await _open(host, port)
            latencies.append((loop.time() - started) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
        conn.writer.close()

    started = loop.time()
    await asyncio.gather(*(client() for _ in range(connections)))
    return latencies, statuses, loop.time() - started


def closed(
    url: str,
    path: str,
    *,
    headers: dict[str, str],
    body_fn: BodyFn,
    seconds: float,
    connections: int,
) -> LoadResult:
    """Closed loop in Python (when wrk is not installed): `connections` clients back to back."""
    host, port = url.removeprefix("http://").split(":")
    latencies, statuses, elapsed = asyncio.run(
        _closed(host, int(port), path, headers, body_fn, seconds, connections)
    )
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        ok=ok,
        errors=len(latencies) - ok,
        p50_ms=percentile(latencies, 50),
        p99_ms=percentile(latencies, 99),
        statuses=statuses,
        tool="asyncio closed",
    )


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def now() -> float:
    return time.monotonic()
