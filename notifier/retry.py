"""Retry policy: exponential backoff with full jitter, honouring Retry-After, capped."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float
    cap_seconds: float

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the delay after failed attempt number `attempt` (1-based)."""
        return float(min(self.cap_seconds, self.base_seconds * (2 ** (attempt - 1))))

    def delay(
        self,
        attempt: int,
        *,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait after failed attempt `attempt`: full jitter, never before Retry-After."""
        jittered = (rng or random).uniform(0, self.ceiling(attempt))
        if retry_after is not None:
            jittered = max(jittered, retry_after)
        return min(jittered, self.cap_seconds)
