"""Settings of the A/B tests (apps/analytics/experiments.py, docs/analytics.md), read from the
environment. Star-imported by base.py."""

from __future__ import annotations

import environ

env = environ.Env()

# No verdict on an A/B test until every label has at least this many deliveries sent (deliveries,
# not distinct recipients; the p-value and interval are shown before; the verdict waits).
ANALYTICS_AB_MIN_SAMPLE = env.int("ANALYTICS_AB_MIN_SAMPLE", default=100)
