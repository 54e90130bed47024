"""Settings of the delivery pipeline, read from the environment: attempts and retries, send
batches, providers and their protection (rate limits, breakers), backpressure, and what
happens when a dependency is down. Star-imported by base.py."""

from __future__ import annotations

import environ

env = environ.Env()

# --- Delivery policy ------------------------------------------------------------------------
DELIVERY_MAX_ATTEMPTS = {
    "email": env.int("EMAIL_MAX_ATTEMPTS", default=6),
    "sms": env.int("SMS_MAX_ATTEMPTS", default=6),
    "push": env.int("PUSH_MAX_ATTEMPTS", default=5),
    "inapp": env.int("INAPP_MAX_ATTEMPTS", default=5),
}
RETRY_BASE_SECONDS = env.float("RETRY_BASE_SECONDS", default=2.0)
RETRY_CAP_SECONDS = env.float("RETRY_CAP_SECONDS", default=300.0)
# A delivery in queued/sending/retrying this long past its due time is re-queued by beat.
RECONCILE_AFTER_SECONDS = env.int("RECONCILE_AFTER_SECONDS", default=120)
# A delivery in `sending` this long is re-queued: its worker died mid-send. Workers run the
# threads pool, where task time limits do not apply, so the bound on a send is the provider
# timeout (PROVIDER_TIMEOUT_SECONDS, SMTP_TIMEOUT_SECONDS); keep this well above it.
SEND_STUCK_AFTER_SECONDS = env.int("SEND_STUCK_AFTER_SECONDS", default=180)
# Deliveries of one channel and priority published together travel in one send message, up to
# this many: the worker claims, loads and records them with a handful of statements instead of
# ten each (the sends themselves go out together, up to PROVIDER_MAX_IN_FLIGHT). 1 turns
# batching off.
SEND_BATCH_SIZE = env.int("SEND_BATCH_SIZE", default=50)
# ... but a publish is spread over at least this many messages while batches stay above one
# delivery (about the worker threads that can take them: a bulk of 100 goes as 15 messages of
# 7, not 2 of 50, so a slow provider is called in parallel).
SEND_BATCH_SPREAD = env.int("SEND_BATCH_SPREAD", default=16)
# A batch starts no new send after this many seconds (a slow provider): the rest go back to
# the queue unattempted.
SEND_BATCH_SECONDS = env.float("SEND_BATCH_SECONDS", default=10.0)
# A batch writes its outcomes at least this often while it sends: a worker killed mid-batch
# sends again (duplicates) at most what it sent since the last write.
SEND_BATCH_RECORD_SECONDS = env.float("SEND_BATCH_RECORD_SECONDS", default=0.25)
# A published message still not consumed this long after it fell due is taken for lost (say,
# held by a worker that was killed) and the delivery is published again; below this, the
# reconciler trusts the publish ledger and leaves a draining backlog alone.
RECONCILE_LOST_AFTER_SECONDS = env.int("RECONCILE_LOST_AFTER_SECONDS", default=900)

# --- Providers ------------------------------------------------------------------------------
EMAIL_FROM = env("EMAIL_FROM", default="notifications@example.com")
SENDGRID_API_KEY = env("SENDGRID_API_KEY", default="")
SENDGRID_API_URL = env("SENDGRID_API_URL", default="")
TWILIO_ACCOUNT_SID = env("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM = env("TWILIO_FROM", default="")
TWILIO_API_URL = env("TWILIO_API_URL", default="")
FCM_PROJECT_ID = env("FCM_PROJECT_ID", default="")
FCM_CREDENTIALS = env("FCM_CREDENTIALS", default="")
FCM_API_URL = env("FCM_API_URL", default="")
# Public URL of /webhooks/twilio/status, sent with each SMS (Twilio validates and calls it).
TWILIO_STATUS_CALLBACK_URL = env("TWILIO_STATUS_CALLBACK_URL", default="")
# SendGrid's signed event webhook verification key (base64 DER / PEM of the ECDSA public key).
SENDGRID_WEBHOOK_PUBLIC_KEY = env("SENDGRID_WEBHOOK_PUBLIC_KEY", default="")
PROVIDER_TIMEOUT_SECONDS = env.float("PROVIDER_TIMEOUT_SECONDS", default=10.0)
# SMTP (Django's SMTP backend): the email provider without SendGrid, and SendGrid's failover.
SMTP_HOST = env("SMTP_HOST", default="")  # empty: no SMTP provider
SMTP_PORT = env.int("SMTP_PORT", default=25)
SMTP_USER = env("SMTP_USER", default="")
SMTP_PASSWORD = env("SMTP_PASSWORD", default="")
SMTP_USE_TLS = env.bool("SMTP_USE_TLS", default=False)  # STARTTLS
SMTP_USE_SSL = env.bool("SMTP_USE_SSL", default=False)  # implicit TLS (port 465)
SMTP_TIMEOUT_SECONDS = env.float("SMTP_TIMEOUT_SECONDS", default=PROVIDER_TIMEOUT_SECONDS)

# --- Provider protection (shared by every worker through Redis; see notifier/ratelimit.py
# and notifier/breaker.py) ---------------------------------------------------------------------
# Sustained sends per second per provider (token-bucket refill rate); 0 or absent = unlimited.
PROVIDER_RATE_PER_SECOND = {
    "sendgrid": env.float("SENDGRID_RATE_PER_SECOND", default=100.0),
    "smtp": env.float("SMTP_RATE_PER_SECOND", default=20.0),
    "twilio": env.float("TWILIO_RATE_PER_SECOND", default=30.0),
    "fcm": env.float("FCM_RATE_PER_SECOND", default=200.0),
}
# Calls to a provider one worker process keeps in flight at once (its HTTP connection pool is
# sized to match): a batch's sends go out together instead of one after another, and every
# batch of the process shares the limit (apps/deliveries/inflight.py). Only the HTTP providers
# take one; the others (SMTP, the in-app inbox, the console) are called one after another.
# 128: two worker processes keep up at 200 ms with what they do at 0 ms (2 x 128 / 0.2 s =
# 1,280/s of room; at 64 the room, 640/s, was the limit: bench/README.md). The threads are
# made as calls need them, hold no database connection, and cost little memory.
PROVIDER_MAX_IN_FLIGHT = {
    "sendgrid": env.int("SENDGRID_MAX_IN_FLIGHT", default=128),
    "twilio": env.int("TWILIO_MAX_IN_FLIGHT", default=128),
    "fcm": env.int("FCM_MAX_IN_FLIGHT", default=128),
}
# Bucket capacity per provider: sends allowed at once after a quiet spell.
PROVIDER_BURST = {
    "sendgrid": env.int("SENDGRID_BURST", default=200),
    "smtp": env.int("SMTP_BURST", default=20),
    "twilio": env.int("TWILIO_BURST", default=30),
    "fcm": env.int("FCM_BURST", default=400),
}
# Consecutive transient failures (timeouts, 429, 5xx) that open a provider's breaker.
BREAKER_FAILURE_THRESHOLD = env.int("BREAKER_FAILURE_THRESHOLD", default=5)
# How long an open breaker refuses calls before it lets one probe through (half-open).
BREAKER_OPEN_SECONDS = env.float("BREAKER_OPEN_SECONDS", default=30.0)
# How long the half-open probe holds its slot; past it (prober died) another caller may probe.
BREAKER_PROBE_TIMEOUT_SECONDS = env.float(
    "BREAKER_PROBE_TIMEOUT_SECONDS", default=PROVIDER_TIMEOUT_SECONDS * 2
)
# A delivery waiting on a bucket or breaker comes back after the wait plus up to this much
# random spread, so that waiters do not return all at once.
PROVIDER_WAIT_JITTER_SECONDS = env.float("PROVIDER_WAIT_JITTER_SECONDS", default=1.0)

# --- Backpressure ---------------------------------------------------------------------------
# Messages waiting in all channel queues above which POST /notifications answers 503.
QUEUE_DEPTH_LIMIT = env.int("QUEUE_DEPTH_LIMIT", default=100_000)
# Retry-After (seconds) sent with that 503.
BACKPRESSURE_RETRY_AFTER_SECONDS = env.int("BACKPRESSURE_RETRY_AFTER_SECONDS", default=5)
# How long one process reuses a queue-depth reading (seconds): one Redis round trip per second.
QUEUE_DEPTH_CACHE_SECONDS = env.float("QUEUE_DEPTH_CACHE_SECONDS", default=1.0)

# --- Broken dependencies (Redis, broker, PostgreSQL) -----------------------------------------
# Retry-After (seconds) of the 503 the API answers while a dependency it needs is down.
DEPENDENCY_RETRY_AFTER_SECONDS = env.int("DEPENDENCY_RETRY_AFTER_SECONDS", default=5)
# A send task that meets a database or Redis fault before calling a provider is retried by
# Celery this many times, after exponential backoff with jitter capped at
# SEND_TASK_RETRY_BACKOFF_MAX seconds; past that the reconciler re-queues what it left.
SEND_TASK_MAX_RETRIES = env.int("SEND_TASK_MAX_RETRIES", default=5)
SEND_TASK_RETRY_BACKOFF_MAX = env.int("SEND_TASK_RETRY_BACKOFF_MAX", default=60)
# SendGrid event webhooks signed longer ago than this are refused (a replayed capture).
SENDGRID_WEBHOOK_MAX_AGE_SECONDS = env.int("SENDGRID_WEBHOOK_MAX_AGE_SECONDS", default=600)

# Topic fan-out (apps/deliveries/fanout.py): subscribers per transaction; how long one run works
# before queueing its continuation (other maintenance tasks run between); the pause while the
# queues are past QUEUE_DEPTH_LIMIT; how long an unfinished fan-out may stand still before the
# resume sweep queues it again (its worker died).
FANOUT_CHUNK_SIZE = env.int("FANOUT_CHUNK_SIZE", default=1000)
FANOUT_SLICE_SECONDS = env.float("FANOUT_SLICE_SECONDS", default=5.0)
FANOUT_BACKPRESSURE_DELAY = env.float("FANOUT_BACKPRESSURE_DELAY", default=2.0)
FANOUT_STALL_SECONDS = env.float("FANOUT_STALL_SECONDS", default=60.0)

# `"send_at": "best_time"`: a recipient with fewer opens, clicks and reads than this in the last
# 90 days is sent at once (too little history to choose an hour from).
ANALYTICS_BEST_TIME_MIN_EVENTS = env.int("ANALYTICS_BEST_TIME_MIN_EVENTS", default=5)
