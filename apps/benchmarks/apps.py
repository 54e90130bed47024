from __future__ import annotations

from django.apps import AppConfig


class BenchmarksConfig(AppConfig):
    """Ceilings for `make bench`: a bare endpoint and a no-op task (URL off unless
    BENCH_ENDPOINTS=1)."""

    name = "apps.benchmarks"
    label = "benchmarks"
