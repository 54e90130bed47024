"""The analytics fold's cost to the pipeline (`python -m bench --only pipeline
--analytics-overhead`): the same email backlog drained with the fold running beside the workers
(beat and a maintenance worker, as the Procfile runs them, ANALYTICS_ENABLED on) and with it off
(the same processes, ANALYTICS_ENABLED=false: the task runs and does nothing), alternating, in
one run. The figure is the ratio of the two drain rates; the target, a drop of at most 5%.

Each drain starts from an empty aggregator queue (what earlier drains left is folded first, not
timed), so an "on" drain folds its own backlog's rows: the queued event of each delivery (made
while queueing), its sent event and its attempt."""

from __future__ import annotations

import dataclasses
import time

import redis

from bench import load
from bench.drain import DrainResult, WorkerConfig, drain_deliveries
from bench.env import load_average
from bench.procs import Simulator, Web
from bench.report import Figure
from bench.rollup_check import uncounted
from bench.seed import Seed

# The rate with the fold beside the workers, as a share of the rate without: at least this.
OVERHEAD_TARGET = 0.95
# Beat's interval for the fold in these drains (seconds): short, so that it folds all through
# a drain of a few seconds (the default, 5 s, could fit one run in it).
FOLD_INTERVAL = 1.0
BEAT_ENTRY = "analytics-fold"


def beat_entry_reset() -> None:
    """Forget beat's stored row for the fold: the next beat seeds it from its environment
    (apps/ops/beat.py keeps an existing row whatever the settings say)."""
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(name=BEAT_ENTRY).delete()


def fold_to_empty(timeout: float = 600.0) -> float:
    """Fold what is left (untimed: between drains). Seconds it took."""
    from apps.analytics.services import rollups_fold_pending

    t0 = time.monotonic()
    while uncounted() and time.monotonic() - t0 < timeout:
        rollups_fold_pending(budget_seconds=30)
    return time.monotonic() - t0


def fold_comparison(
    web: Web,
    seed: Seed,
    cfg: WorkerConfig,
    env: dict[str, str],
    r: redis.Redis,
    *,
    backlog: int,
    repeats: int,
    sim: Simulator,
) -> Figure:
    """`repeats` pairs of drains (off, then on), each from an empty aggregator queue."""
    runs: dict[bool, list[DrainResult]] = {False: [], True: []}
    left_after_on: list[int] = []
    fold_env = {**env, "ANALYTICS_FOLD_INTERVAL": str(FOLD_INTERVAL)}
    beat_entry_reset()
    try:
        for _ in range(max(1, repeats)):
            for enabled in (False, True):
                fold_to_empty()
                with_fold = dataclasses.replace(cfg, fold=enabled)
                runs[enabled].append(
                    drain_deliveries(web, seed, with_fold, fold_env, r, backlog, sim=sim)
                )
                if enabled:
                    left_after_on.append(uncounted())
    finally:
        beat_entry_reset()
    folded_after = fold_to_empty()
    on = load.median([d.rate for d in runs[True]])
    off = load.median([d.rate for d in runs[False]])
    ratio = on / off if off else float("nan")
    return Figure(
        "pipeline",
        f"deliveries/s with the analytics fold beside ({backlog:,} email backlog, 0 ms)",
        on,
        "/s",
        ceiling=off,
        ceiling_name="fold off",
        target=f">= {OVERHEAD_TARGET:.0%} of off (drop <= {1 - OVERHEAD_TARGET:.0%})",
        met=ratio >= OVERHEAD_TARGET,
        load=load_average(),
        note=(
            f"on/off {ratio:.3f}; {cfg.describe()}, plus beat and a maintenance worker (-P solo) "
            f"in both; on (ANALYTICS_ENABLED, beat every {FOLD_INTERVAL:g} s) runs "
            f"{[round(d.rate) for d in runs[True]]}/s, off "
            f"(ANALYTICS_ENABLED=false) runs {[round(d.rate) for d in runs[False]]}/s, "
            f"alternating off then on; rows still uncounted when each 'on' drain ended "
            f"{left_after_on} (folded after, untimed: {folded_after:.1f}s)"
        ),
    )
