"""The analytics rollup against the timeline after a run (chaos, bench): fold whatever is still
uncounted (the beat's folds run beside it: two folders at once), then the rollup's totals must
equal a direct count over the run's deliveries, events and attempts (docs/analytics.md)."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class RollupCheck:
    rollup: dict[str, int]
    timeline: dict[str, int]
    fold_seconds: float
    uncounted_left: int

    @property
    def ok(self) -> bool:
        return self.uncounted_left == 0 and self.rollup == self.timeline

    def describe(self) -> str:
        verdict = "equal" if self.ok else "DIFFERENT"
        diff = {
            k: (self.rollup.get(k), v) for k, v in self.timeline.items() if self.rollup.get(k) != v
        }
        return (
            f"rollup check: {verdict} (folded to empty in {self.fold_seconds:.1f}s, "
            f"{self.uncounted_left} rows left uncounted)\n"
            f"  rollup:   {self.rollup}\n  timeline: {self.timeline}"
            + (f"\n  differences (rollup, timeline): {diff}" if diff else "")
        )


def uncounted() -> int:
    from apps.deliveries.models import Attempt, DeliveryEvent

    return (
        DeliveryEvent.objects.filter(counted=False).count()
        + Attempt.objects.filter(counted=False).count()
    )


def rollup_check(*, client_id: int, timeout: float = 600.0) -> RollupCheck:
    """Fold to empty (at most `timeout` seconds), then compare the client's totals."""
    from apps.analytics.fold_selectors import rollup_totals, timeline_totals
    from apps.analytics.services import rollups_fold_pending

    t0 = time.monotonic()
    while uncounted() and time.monotonic() - t0 < timeout:
        rollups_fold_pending(budget_seconds=30)
    return RollupCheck(
        rollup=rollup_totals(client_id=client_id),
        timeline=timeline_totals(notification__client_id=client_id),
        fold_seconds=time.monotonic() - t0,
        uncounted_left=uncounted(),
    )
