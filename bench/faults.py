"""The chaos run's fault schedule (see bench/chaos.py): a thread that breaks the simulators,
kills and restarts the email worker and flushes Redis at set times from the burst's start."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import redis

from bench.drain import Latency
from bench.procs import Simulator, Worker

if TYPE_CHECKING:
    from bench.chaos import ChaosConfig


# When (b) kills the email worker and (c) flushes Redis, in seconds from the burst's start
# before --fault-scale (the burst times its digest and topic requests around them).
KILL_AT = 20.0
FLUSH_AT = 45.0


class Faults(threading.Thread):
    """Applies the fault schedule while the burst and the drain run."""

    def __init__(
        self,
        cfg: ChaosConfig,
        sims: dict[str, Simulator],
        workers: dict[str, Worker],
        r: redis.Redis,
    ) -> None:
        super().__init__(daemon=True)
        self.cfg = cfg
        self.sims = sims
        self.workers = workers
        self.r = r
        self.error: BaseException | None = None
        self.t0 = time.monotonic()

    def note(self, text: str) -> None:
        line = f"t+{time.monotonic() - self.t0:5.1f}s  {text}"
        self.cfg.timeline.append(line)
        self.cfg.log(line)

    def at(self, seconds: float) -> None:
        delay = self.t0 + seconds * self.cfg.fault_scale - time.monotonic()
        if delay > 0:
            time.sleep(delay)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the main thread
            self.error = exc

    def _run(self) -> None:
        s = self.cfg.fault_scale
        latency = Latency(self.cfg.provider_ms, self.cfg.provider_jitter_ms)
        if latency.ms > 0:
            # Real providers answer in 100-300 ms: every simulator does, for the whole run,
            # under the faults below (a timeout or an error comes after the latency).
            for sim in self.sims.values():
                latency.apply(sim)
            self.note(f"provider latency {latency.describe()} on {', '.join(sorted(self.sims))}")
        if "sms" in self.sims:
            self.sims["sms"].fault(
                kind="status", status=429, retry_after=2, share=self.cfg.sms_429_share
            )
            self.note(f"(d) sms simulator: 429 Retry-After 2 for {self.cfg.sms_429_share:.0%}")
        else:
            self.note("(d) skipped: no SMS simulator in this project yet (console provider)")
        self.at(5)
        if "email" in self.sims:
            self.sims["email"].fault(kind="timeout", seconds=30 * s, duration=30 * s)
            self.note(f"(a) email simulator: timeouts for {30 * s:.0f}s")
        self.at(KILL_AT)
        worker = self.workers["email"]
        worker.kill()
        self.note(f"(b) email worker (pid {worker.pid}) killed with SIGKILL")
        self.at(23)
        self.workers["email"] = worker.restart()
        self.note(f"(b) email worker restarted (pid {self.workers['email'].pid})")
        self.at(35)
        if "email" in self.sims:
            self.sims["email"].fault(kind="status", status=503, duration=30 * s)
            self.note(f"(a) email simulator: 503 for {30 * s:.0f}s")
        self.at(FLUSH_AT)
        self.r.flushdb()
        self.note("(c) Redis FLUSHDB")
        self.at(65)
        self.note("(a) email simulator healthy again")
