"""Settings shared by every environment, read from the environment (12-factor)."""

from __future__ import annotations

from pathlib import Path

import environ

from notifier.queues import MAINTENANCE_QUEUE, TIMERS_QUEUE, WEBHOOKS_QUEUE

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-insecure-change-me")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# Origins that may open the inbox WebSocket (e.g. https://app.example.com); empty means
# ALLOWED_HOSTS. `*` (here or in ALLOWED_HOSTS when this is empty) is refused unless DEBUG.
WEBSOCKET_ALLOWED_ORIGINS = env.list("WEBSOCKET_ALLOWED_ORIGINS", default=[])
# The same origins may call the inbox API cross-origin (the bell on a product's page); the
# origins themselves are decided in apps/inbox/origins.py, not by a list of django-cors-headers.
CORS_URLS_REGEX = r"^/api/v1/inbox(/|$)"
CORS_ALLOW_HEADERS = ["authorization", "content-type", "last-event-id"]
CORS_ALLOW_METHODS = ["GET", "POST", "OPTIONS"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc as static files (no CDN)
    "django_celery_beat",
    "channels",
    "django_prometheus",
    "corsheaders",
    "apps.clients",
    "apps.recipients",
    "apps.templates",
    "apps.deliveries",
    "apps.inbox",
    "apps.topics",
    "apps.preferences",
    "apps.webhooks",
    "apps.analytics",
    "apps.core",
    "apps.ops",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files under uvicorn (nothing else serves them): right after SecurityMiddleware,
    # before anything that would touch the session or the database.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.core.middleware.BodySizeLimitMiddleware",
    # Before CommonMiddleware: answers the bell's preflights (only for the inbox API and only
    # for WEBSOCKET_ALLOWED_ORIGINS; apps/inbox/origins.py).
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}")
}
# A new PostgreSQL connection costs ~10 ms: keep them, and check them before reuse.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Query counts and latencies in /metrics: django-prometheus wraps the same backends.
DATABASES["default"]["ENGINE"] = DATABASES["default"]["ENGINE"].replace(
    "django.db.backends.", "django_prometheus.db.backends."
)
if DATABASES["default"]["ENGINE"].endswith(".postgresql") and env.bool("DB_POOL", default=True):
    # Under ASGI every request runs in a thread of its own, so per-thread persistent
    # connections are never reused (each request paid a new connection): pool them per process.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DB_POOL_MIN", default=1),
        "max_size": env.int("DB_POOL_MAX", default=10),
        "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
    }
# The API's hot statements (apps/core/bound.py), and the fan-out worker's delivery INSERTs (a
# shared helper), are bound server-side and prepared by psycopg per connection after 5 runs;
# every other statement is bound client-side, never prepared. Off (false) behind a
# transaction-mode pooler in front of the web or the workers that cannot keep them apart or
# pass DEALLOCATE ALL (PgBouncer before 1.22, or without max_prepared_statements).
DB_PREPARED_STATEMENTS = env.bool("DB_PREPARED_STATEMENTS", default=True)
if DATABASES["default"]["ENGINE"].endswith(".postgresql") and DB_PREPARED_STATEMENTS:
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
# A server-side bound on every statement (ms, 0: none). Set by the web process only
# (config/gunicorn.py, from WEB_STATEMENT_TIMEOUT_MS): gthread cannot stop a request thread stuck
# in a query, PostgreSQL can. Workers and migrations are left unbounded. Sent as a startup
# option: behind PgBouncer add `options` to its ignore_startup_parameters, or set WEB_...=0.
DB_STATEMENT_TIMEOUT_MS = env.int("DB_STATEMENT_TIMEOUT_MS", default=0)
if DATABASES["default"]["ENGINE"].endswith(".postgresql") and DB_STATEMENT_TIMEOUT_MS > 0:
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
        f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS}"
    )
if DATABASES["default"]["ENGINE"].endswith(".sqlite3"):
    # SQLite (make run without DATABASE_URL) serves web, worker and beat at once: wait on locks.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en"
# The languages of the pages recipients see (unsubscribe, preference centre): apps/preferences/
# locale/ holds the translations. A recipient's locale picks one (`de-AT` -> `de`), else `en`.
LANGUAGES = [("en", "English"), ("de", "Deutsch")]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
# Development and tests serve static files straight from the apps (no collectstatic first);
# production serves what collectstatic gathered in STATIC_ROOT (config/settings/prod.py).
WHITENOISE_USE_FINDERS = True

REDIS_URL = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
# Shared by every process: per-key throttles, rate limits and breakers need one view.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": "notifier",
    }
}

# --- REST API -------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.clients.auth.ApiKeyAuthentication",
        "apps.recipients.auth.RecipientTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["apps.clients.auth.IsServiceClient"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON the database can store, at most JSON_MAX_DEPTH deep, or a 400 (apps.core.parsers).
    "DEFAULT_PARSER_CLASSES": ["apps.core.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "apps.core.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "apps.core.schema.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.clients.auth.ApiKeyRateThrottle",
        "apps.recipients.auth.RecipientRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "api_key": env("API_KEY_RATE", default="6000/min"),
        # Per recipient, for end users' apps (inbox, preferences, devices with a token).
        "recipient": env("RECIPIENT_RATE", default="600/min"),
    },
    "UNAUTHENTICATED_USER": None,
}
# A verified API key is remembered this long per process (one query fewer per request); a
# revoked key keeps working in other processes for at most this long. 0 turns it off.
API_KEY_CACHE_SECONDS = env.float("API_KEY_CACHE_SECONDS", default=10.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "Notifier API",
    "DESCRIPTION": "Send email, SMS, push and in-app notifications that are never lost. "
    "The same contract as ReDoc: [/api/redoc/](/api/redoc/).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/docs/ (Swagger UI) and /api/redoc/ load their code from drf-spectacular-sidecar's
    # static files: nothing is fetched from another host, so the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: Swagger UI would send the schema to validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    # Separate request and response components: read-only fields are not request fields.
    "COMPONENT_SPLIT_REQUEST": True,
    # One named enum per vocabulary, shared by every endpoint that uses it.
    "ENUM_NAME_OVERRIDES": {
        "ChannelEnum": "apps.deliveries.models.CHANNEL_CHOICES",
        "PriorityEnum": "apps.deliveries.models.PRIORITY_CHOICES",
        "DeliveryStatusEnum": "apps.deliveries.models.DeliveryStatus",
        "ExperimentKindEnum": "apps.analytics.experiments.ExperimentKind",
        "ExperimentVerdictEnum": "notifier.experiments.VERDICTS",
    },
}
# Largest request body accepted (bytes); larger is a 413 in the error shape.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("MAX_REQUEST_BYTES", default=1_048_576)
# Deepest nesting of arrays/objects a JSON body may have (deeper: 400, before decoding).
JSON_MAX_DEPTH = env.int("JSON_MAX_DEPTH", default=32)
# Devices not registered again for this many days are deleted by beat (tokens go stale).
DEVICE_INACTIVE_DAYS = env.int("DEVICE_INACTIVE_DAYS", default=270)
RECIPIENT_TOKEN_TTL_SECONDS = env.int("RECIPIENT_TOKEN_TTL_SECONDS", default=24 * 3600)
# --- Unsubscribe links and the preference centre (apps/preferences) -------------------------
# Where recipients reach this service: the links in List-Unsubscribe, `{{ unsubscribe_url }}`
# and `{{ preferences_url }}` start with it (https in production; `make run` sets its own port).
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# An address for `List-Unsubscribe: <mailto:...>` beside the https link (empty: none). Mail to
# it is not read by this service: point it at something that calls POST /u/{token}, or leave it.
UNSUBSCRIBE_MAILTO = env("UNSUBSCRIBE_MAILTO", default="")
# Unsubscribe links never expire by default (an old email must still let its reader leave,
# as RFC 8058 practice expects); a positive number of seconds makes older links a 404.
UNSUBSCRIBE_LINK_MAX_AGE_SECONDS = env.int("UNSUBSCRIBE_LINK_MAX_AGE_SECONDS", default=0)
# Preference-centre links (the API's and `{{ preferences_url }}` in messages) open the whole
# profile: they expire after this many seconds (0: never).
PREFERENCES_LINK_MAX_AGE_SECONDS = env.int(
    "PREFERENCES_LINK_MAX_AGE_SECONDS", default=30 * 24 * 3600
)
# Categories a recipient cannot leave (account security, receipts): their emails carry no
# List-Unsubscribe, their links are refused and the preference centre shows them locked. This
# list is the only rule: a template's default priority does not lock its category. A single
# email sent as `critical` carries no List-Unsubscribe (that send only).
CRITICAL_CATEGORIES = env.list("CRITICAL_CATEGORIES", default=["security"])
# Template rendering limits, per message (notifier/template_limits.py): a render past them
# is a 400 at the API and a permanent failure in the worker, never retried.
RENDER_MAX_EMAIL_BYTES = env.int("RENDER_MAX_EMAIL_BYTES", default=256 * 1024)
RENDER_MAX_TEXT_BYTES = env.int("RENDER_MAX_TEXT_BYTES", default=4 * 1024)  # push, SMS, in-app
# Loop iterations of one render, every `{% for %}` together (nested loops multiply).
RENDER_MAX_LOOP_ITERATIONS = env.int("RENDER_MAX_LOOP_ITERATIONS", default=50_000)
RENDER_MAX_SECONDS = env.float("RENDER_MAX_SECONDS", default=2.0)
# `make bench` only (never in production): install apps.benchmarks, the ceilings the benchmarks
# compare with (the bare endpoint under /bench/, its table, the no-op task).
BENCH_ENDPOINTS = env.bool("BENCH_ENDPOINTS", default=False)
if BENCH_ENDPOINTS:
    INSTALLED_APPS = [*INSTALLED_APPS, "apps.benchmarks"]

# --- Overload admission (WSGI web, apps/core/admission.py) -----------------------------------
# Requests one web process serves at once; more get an immediate 503 + Retry-After (0: no
# limit). Defaults to gunicorn's WEB_THREADS (4), so that the two move together: above the
# threads the excess would only queue inside gunicorn unseen; set it below them and the spare
# threads answer the excess at once while the admitted requests share the CPU with fewer others
# (tighter p99, but bursts are shed sooner: measured in bench/README.md). Behind the proxy the
# queue budget below sheds the excess that waits in gunicorn's queue.
ADMISSION_MAX_IN_FLIGHT = env.int(
    "ADMISSION_MAX_IN_FLIGHT", default=env.int("WEB_THREADS", default=4)
)
# Longest wait (ms) between the reverse proxy's X-Request-Start stamp and a process picking the
# request up; longer is a 503 (0: off; without the header nothing is measured). Needs a proxy
# that stamps X-Request-Start itself (docker/nginx/); stamps > 1 s ahead or > 60 s old are
# ignored (notifier_request_start_ignored_total), never shed.
ADMISSION_MAX_QUEUE_MS = env.float("ADMISSION_MAX_QUEUE_MS", default=100.0)
ADMISSION_RETRY_AFTER_SECONDS = env.int("ADMISSION_RETRY_AFTER_SECONDS", default=1)
# Always admitted (prefixes): the probes and the scrape must answer most when the API is busy.
ADMISSION_EXEMPT_PATHS = env.list(
    "ADMISSION_EXEMPT_PATHS", default=["/healthz", "/readyz", "/metrics"]
)

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 30
CELERY_TASK_TIME_LIMIT = 60
CELERY_TASK_DEFAULT_QUEUE = MAINTENANCE_QUEUE
# The sweeps that must run on time have a queue (and a worker) of their own: behind a fan-out's
# slices, the reconciler or the retention purge (minutes) a release or a digest's close would
# wait as long. Routed by name, so beat's messages and a sweep's own continuation land there.
CELERY_TASK_ROUTES = {
    "deliveries.release_due": {"queue": TIMERS_QUEUE},
    "deliveries.digests_close_due": {"queue": TIMERS_QUEUE},
    # Outbound webhooks: their own queue and worker (a slow receiver never delays a send).
    # ...but their sweep runs on the maintenance queue: slow receivers holding every webhooks
    # thread must not hold up the sweep that hands their stuck rows back, and a slow sweep (a
    # slow broker, a full batch of publishes) must not delay the digests' closes on `timers`
    # (webhook retries are minutes apart; first attempts are published on commit anyway).
    "webhooks.dispatch_due": {"queue": MAINTENANCE_QUEUE},
    "webhooks.*": {"queue": WEBHOOKS_QUEUE},
    # The analytics fold: short runs (a time budget), behind nothing urgent; a late run is
    # superseded by the next (its message expires), the rows wait for it uncounted.
    "analytics.*": {"queue": MAINTENANCE_QUEUE},
}
CELERY_TASK_DEFAULT_PRIORITY = 5
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Longest retry delay is RETRY_CAP_SECONDS; a countdown above the visibility timeout would be
# redelivered over and over, so the timeout stays well above the cap.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("BROKER_VISIBILITY_TIMEOUT", default=3600),
    "queue_order_strategy": "priority",
}
# django-celery-beat's scheduler, but the entries below are created once (first start) and then
# left alone: an operator's edit in the admin survives a restart (apps/ops/beat.py).
CELERY_BEAT_SCHEDULER = "apps.ops.beat:DatabaseScheduler"


def _every(task: str, setting: str, default: float) -> dict[str, object]:
    """A beat entry whose message expires after one period: if the maintenance queue backs up,
    the next run supersedes a late one instead of piling up behind it. (django-celery-beat
    stores `expire_seconds` and sends it as `expires`; Celery's own scheduler sends `expires`.)"""
    seconds = env.float(setting, default=default)
    expiry = int(max(seconds, 1))
    return {
        "task": task,
        "schedule": seconds,
        "options": {"expires": expiry, "expire_seconds": expiry},
    }


CELERY_BEAT_SCHEDULE = {
    "deliveries-reconcile": _every("deliveries.reconcile", "RECONCILE_EVERY_SECONDS", 15.0),
    "deliveries-release-due": _every("deliveries.release_due", "RELEASE_EVERY_SECONDS", 5.0),
    # Digest windows close within a second or two of their time (there is no message per window).
    "deliveries-close-digests": _every(
        "deliveries.digests_close_due", "DIGEST_CLOSE_EVERY_SECONDS", 1.0
    ),
    "recipients-prune-devices": _every(
        "recipients.prune_devices", "PRUNE_DEVICES_EVERY_SECONDS", 6 * 3600.0
    ),
    "deliveries-fan-outs-resume": _every(
        "deliveries.fan_outs_resume", "FANOUT_RESUME_EVERY_SECONDS", 15.0
    ),
    "deliveries-purge-history": _every("deliveries.purge_history", "PURGE_EVERY_SECONDS", 3600.0),
    # Outbound webhooks due (retries, and first attempts whose publish was lost), from the DB.
    "webhooks-dispatch-due": _every("webhooks.dispatch_due", "WEBHOOKS_SWEEP_EVERY_SECONDS", 2.0),
    # The timeline's new rows into the analytics rollup (apps/analytics).
    "analytics-fold": _every("analytics.fold", "ANALYTICS_FOLD_INTERVAL", 5.0),
}

# The analytics rollup's aggregator and the prices of accepted attempts.
from .analytics import *  # noqa: E402, F403

# The delivery pipeline's policy: attempts, retries, batches, providers, their protection,
# backpressure and broken dependencies.
from .delivery import *  # noqa: E402, F403

# A/B tests (the verdict's minimum sample).
from .experiments import *  # noqa: E402, F403

# Outbound webhooks and the service's own system emails.
from .webhooks import *  # noqa: E402, F403

# --- Channels (WebSocket) -------------------------------------------------------------------
# redis-py 8 times out idle reads after 5 s and caps pools at 100: both are wrong for sockets.
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [{"address": REDIS_URL, "socket_timeout": None, "max_connections": 500}],
            # channels-redis drops, without a word, what a socket's channel cannot hold (more
            # than `capacity` waiting, or older than `expiry` seconds); the bell fills such gaps
            # (docs/inbox.md). Settable so that tests can force drops.
            "capacity": env.int("CHANNEL_LAYER_CAPACITY", default=100),
            "expiry": env.int("CHANNEL_LAYER_EXPIRY", default=60),
        },
    }
}
# Inbox sockets: a ping every INBOX_PING_SECONDS; a client silent for INBOX_IDLE_SECONDS is
# dropped. A reconnect with `since=` replays at most INBOX_CATCHUP_LIMIT messages.
INBOX_PING_SECONDS = env.float("INBOX_PING_SECONDS", default=20.0)
INBOX_IDLE_SECONDS = env.float("INBOX_IDLE_SECONDS", default=60.0)
INBOX_CATCHUP_LIMIT = env.int("INBOX_CATCHUP_LIMIT", default=200)
# The inbox event stream (SSE) sends a comment line this often, so proxies keep it open.
INBOX_STREAM_HEARTBEAT_SECONDS = env.float("INBOX_STREAM_HEARTBEAT_SECONDS", default=15.0)
# Open streams one recipient may hold on one ASGI process (beyond: 429 with Retry-After).
INBOX_STREAMS_PER_RECIPIENT = env.int("INBOX_STREAMS_PER_RECIPIENT", default=5)

# Logging.
from .logs import *  # noqa: E402, F403

# --- Observability --------------------------------------------------------------------------
# Each Celery worker serves its metrics on this port (0: off); the web serves /metrics.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
WORKER_METRICS_ADDRESS = env("WORKER_METRICS_ADDRESS", default="0.0.0.0")  # noqa: S104
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT", default="production")
# Delivery history (notifications, deliveries, events, attempts) older than this is purged.
RETENTION_DAYS = env.int("RETENTION_DAYS", default=90)
