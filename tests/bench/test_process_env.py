"""The benchmarks' processes run the production settings: those settings must let them start
(a new production check once stopped `make bench` and `make chaos` at their first process)."""

from __future__ import annotations

import subprocess
import sys

from bench.env import ROOT, process_env

# The same refusal the web and worker processes run on import (config/asgi.py, celery).
START_CHECK = (
    "import django; django.setup(); "
    "from apps.core.production import refuse_unsafe_start; refuse_unsafe_start()"
)


def start_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - this interpreter, a fixed script
        [sys.executable, "-c", START_CHECK],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_bench_environment_passes_the_production_start_checks() -> None:
    done = start_check(process_env())
    assert done.returncode == 0, done.stderr[-2000:]


def test_with_a_webhook_receiver_on_loopback_the_bench_still_starts() -> None:
    """`--webhook-receiver-sleep` allows private webhook addresses: a warning beside
    BENCH_ENDPOINTS (notifier.W003), an error anywhere else in production (notifier.E005)."""
    env = {**process_env(), "WEBHOOKS_ALLOW_PRIVATE": "1"}

    done = start_check(env)
    refused = start_check({**env, "BENCH_ENDPOINTS": "0"})

    assert done.returncode == 0, done.stderr[-2000:]
    assert refused.returncode != 0
    assert "notifier.E005" in refused.stderr
