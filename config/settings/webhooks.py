"""Settings of the outbound webhooks (apps/webhooks, docs/webhooks.md) and of the service's own
system emails, read from the environment. Star-imported by base.py."""

from __future__ import annotations

import environ

env = environ.Env()

# http:// and loopback/private addresses for endpoints: development and tests only (dev.py and
# test.py turn it on; production refuses to start with it, notifier.E005).
WEBHOOKS_ALLOW_PRIVATE = env.bool("WEBHOOKS_ALLOW_PRIVATE", default=False)
# One attempt's whole budget (DNS, connect, TLS, send, read the answer), seconds: a deadline
# the transport enforces (a receiver dripping its answer is cut there).
WEBHOOKS_TIMEOUT_SECONDS = env.float("WEBHOOKS_TIMEOUT_SECONDS", default=10.0)
# The webhooks worker's threads (Procfile, compose: `-c`); each process's DNS lookup pool for
# webhook sends has as many threads, so no attempt waits for another's lookup.
WEBHOOKS_CONCURRENCY = env.int("WEBHOOKS_CONCURRENCY", default=16)
# Attempts at one endpoint under way at once, across the webhooks workers (0: no limit).
WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT = env.int("WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT", default=4)
# The delays before each retry (seconds; jittered +-20%): 8 attempts over about a day.
WEBHOOKS_RETRY_SCHEDULE = [
    float(s)
    for s in env.list(
        "WEBHOOKS_RETRY_SCHEDULE", default=["5", "300", "1800", "7200", "18000", "36000", "36000"]
    )
]
# An endpoint failing every attempt for this long is disabled and its client's operators told.
WEBHOOKS_DISABLE_AFTER_SECONDS = env.float("WEBHOOKS_DISABLE_AFTER_SECONDS", default=5 * 86400)
# ...and failed at least this many attempts in the last 24 hours (sparse traffic).
WEBHOOKS_DISABLE_MIN_RECENT_FAILURES = env.int("WEBHOOKS_DISABLE_MIN_RECENT_FAILURES", default=3)
# Where that email goes when the client names no operators (ApiClient.operator_emails).
WEBHOOKS_ALERT_EMAILS = env.list("WEBHOOKS_ALERT_EMAILS", default=[])
# The endpoint's breaker: this many failures in a row open it for WEBHOOKS_BREAKER_OPEN_SECONDS.
WEBHOOKS_BREAKER_FAILURES = env.int("WEBHOOKS_BREAKER_FAILURES", default=5)
WEBHOOKS_BREAKER_OPEN_SECONDS = env.float("WEBHOOKS_BREAKER_OPEN_SECONDS", default=60.0)
# The old secret keeps signing (beside the new one) this long after a rotation.
WEBHOOKS_SECRET_OVERLAP_SECONDS = env.float("WEBHOOKS_SECRET_OVERLAP_SECONDS", default=86400.0)
# Messages the beat sweep dispatches per run.
WEBHOOKS_SWEEP_BATCH = env.int("WEBHOOKS_SWEEP_BATCH", default=500)
# System emails (a webhook endpoint disabled): django-environ's EMAIL_URL (smtp://, consolemail://).
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="notifier@localhost")
