"""Settings of the analytics rollup (apps/analytics, docs/analytics.md): the aggregator that
folds the delivery timeline into hourly rows, and what each accepted attempt costs. Read from
the environment; star-imported by base.py."""

from __future__ import annotations

import environ
from django.core.exceptions import ImproperlyConfigured

from notifier.costs import prices_parse

env = environ.Env()

# Off: the fold task does nothing. The timeline keeps its uncounted rows and, turned on again,
# the aggregator catches up from where it stopped, with two exceptions (docs/analytics.md):
# rows the history purge deletes meanwhile are never counted, and sent->delivered is measured
# from the delivery's sent_at as it is when the row is folded.
ANALYTICS_ENABLED = env.bool("ANALYTICS_ENABLED", default=True)
# How often beat runs the fold (seconds): the rollup lags the pipeline by about this much.
ANALYTICS_FOLD_INTERVAL = env.float("ANALYTICS_FOLD_INTERVAL", default=5.0)
# Timeline rows (and attempt rows) one fold transaction takes.
ANALYTICS_FOLD_BATCH = env.int("ANALYTICS_FOLD_BATCH", default=2000)
# One run folds batches until none are left or this many seconds have passed. Short: the fold
# runs on the maintenance worker (`-P solo`, one task at a time), where a long run would delay
# release_due and webhooks.dispatch_due; a backlog is caught up over the next runs (beat every
# ANALYTICS_FOLD_INTERVAL).
ANALYTICS_FOLD_BUDGET_SECONDS = env.float("ANALYTICS_FOLD_BUDGET_SECONDS", default=2.0)
# The currency of ANALYTICS_COSTS (reported with every cost; never converted).
ANALYTICS_CURRENCY = env("ANALYTICS_CURRENCY", default="USD")
# The price of one unit, per channel and provider, as a decimal string: an email, an SMS
# segment (GSM-7 160/153 characters, UCS-2 70/67), a push device message; the in-app inbox is
# free. Unlisted: 0. Set the whole mapping as JSON, e.g.
# ANALYTICS_COSTS='{"email": {"sendgrid": "0.0004"}, "sms": {"twilio": "0.0083"}}'.
# The defaults are list prices at the time of writing: put your contract's. Parsed and checked
# here (a known channel, each price a decimal from 0 to 1000 a unit): a bad value stops the
# start, never a send.
try:
    ANALYTICS_COSTS = prices_parse(
        env.json(
            "ANALYTICS_COSTS",
            default={
                "email": {"sendgrid": "0.0004", "smtp": "0"},
                "sms": {"twilio": "0.0083"},
                "push": {"fcm": "0"},
            },
        )
    )
except ValueError as exc:  # JSON that does not parse is a ValueError too
    raise ImproperlyConfigured(f"ANALYTICS_COSTS: {exc}") from exc
