"""Overload admission for the WSGI web: admit what this process can serve, shed the rest at once.

Past its capacity a web process does not get faster, it only queues: every request waits
behind the ones before it and latency grows to seconds for all of them. This wrapper sits in
front of Django (config/wsgi.py) and answers a request 503 with `Retry-After`, in the API's
error shape and before Django, the database or the broker see it (so a shed request created
nothing and can be retried as it is), when either

- `ADMISSION_MAX_IN_FLIGHT` requests are already being served by this process, or
- the request waited longer than `ADMISSION_MAX_QUEUE_MS` between the reverse proxy stamping
  `X-Request-Start` and this process picking it up (the queue in front of the process, which
  the in-flight count cannot see: the listen backlog, gunicorn's thread pool queue).

The probes, `/metrics` and static files are always admitted. 0 turns either limit off.

The queue-time budget needs a proxy that stamps every request itself (docker/nginx/ does,
overwriting any client's header); without one only the in-flight limit protects the process.
A stamp that cannot be a queue wait (> 1 s ahead, > 60 s old, not a number) is ignored and
counted in `notifier_request_start_ignored_total`, never shed.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import Counter

from apps.core.errors import error_body

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

REQUESTS_SHED = Counter(
    "notifier_requests_shed",
    "Requests answered 503 by overload admission before Django ran (reason: in_flight, "
    "queue_time).",
    ["reason"],
)

# A stamp that cannot be a queue wait is ignored (the request admitted as if unstamped, and
# counted): a clock skewed between the proxy and this host, or a wrong unit, must not shed
# every request (too old) nor blind the budget silently (too new).
STAMPS_IGNORED = Counter(
    "notifier_request_start_ignored",
    "X-Request-Start stamps ignored by overload admission: unreadable, from the future or too "
    "old to be a queue wait (clock skew, wrong unit, client-supplied).",
)

# X-Request-Start values are epoch times in seconds (nginx `t=${msec}`), milliseconds (Heroku's
# router), microseconds (Apache `%t`) or nanoseconds: told apart by magnitude.
_MS_THRESHOLD = 1e11
_US_THRESHOLD = 1e14
_NS_THRESHOLD = 1e17
# Beyond these the stamp is not believed: a proxy's clock ahead of ours by more than this, or a
# wait longer than any proxy holds a request (its read timeout is 60 s).
MAX_STAMP_AHEAD_SECONDS = 1.0
MAX_STAMP_AGE_SECONDS = 60.0


def queue_ms(header: str | None, now: float) -> float | None:
    """Milliseconds since the proxy stamped the request; None without a stamp or with one that
    cannot be a queue wait (not a finite number, > 1 s ahead of `now`, > 60 s old)."""
    if not header:
        return None
    try:
        stamp = float(header.strip().removeprefix("t="))
    except ValueError:
        return None
    if not math.isfinite(stamp) or stamp <= 0:
        return None
    if stamp > _NS_THRESHOLD:
        stamp /= 1e9
    elif stamp > _US_THRESHOLD:
        stamp /= 1e6
    elif stamp > _MS_THRESHOLD:
        stamp /= 1e3
    waited = now - stamp
    if waited < -MAX_STAMP_AHEAD_SECONDS or waited > MAX_STAMP_AGE_SECONDS:
        return None
    return max(0.0, waited * 1000)


class _Release:
    """The response iterable, releasing the in-flight slot once: when the body has been
    iterated to its end or when the server closes it, whichever comes first (PEP 3333 servers
    close; a test client that only reads the body must not leak the slot either)."""

    def __init__(self, result: Iterable[bytes], release: Callable[[], None]) -> None:
        self._result = result
        self._release = release
        self._released = False

    def _done(self) -> None:
        if not self._released:
            self._released = True
            self._release()

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._result
        finally:
            self._done()

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._done()


class Admission:
    """WSGI middleware: the in-flight limit and the queue-time budget of one process."""

    def __init__(
        self,
        app: WsgiApp,
        *,
        max_in_flight: int,
        max_queue_ms: float,
        retry_after: int,
        exempt: Iterable[str],
    ) -> None:
        self.app = app
        self.max_in_flight = max_in_flight
        self.max_queue_ms = max_queue_ms
        self.retry_after = retry_after
        self.exempt = tuple(exempt)
        self._slots = threading.BoundedSemaphore(max_in_flight) if max_in_flight > 0 else None

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith(self.exempt):
            return self.app(environ, start_response)
        if self.max_queue_ms > 0:
            stamp = environ.get("HTTP_X_REQUEST_START")
            waited = queue_ms(stamp, time.time())
            if waited is None and stamp:
                STAMPS_IGNORED.inc()
            elif waited is not None and waited > self.max_queue_ms:
                return self._shed(start_response, "queue_time")
        slots = self._slots
        if slots is None:
            return self.app(environ, start_response)
        if not slots.acquire(blocking=False):
            return self._shed(start_response, "in_flight")
        try:
            result = self.app(environ, start_response)
        except BaseException:
            slots.release()
            raise
        return _Release(result, slots.release)

    def _shed(self, start_response: StartResponse, reason: str) -> list[bytes]:
        REQUESTS_SHED.labels(reason=reason).inc()
        body = json.dumps(
            error_body(
                "overloaded",
                "The service is at capacity; nothing was done. Retry after the given seconds.",
                {"reason": [reason]},
            )
        ).encode()
        start_response(
            "503 Service Unavailable",
            [
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
                ("Retry-After", str(self.retry_after)),
            ],
        )
        return [body]


def admission_from_settings(app: WsgiApp) -> WsgiApp:
    """`app` behind the limits configured in settings (the app itself when both are off)."""
    from django.conf import settings

    max_in_flight = int(settings.ADMISSION_MAX_IN_FLIGHT)
    max_queue_ms = float(settings.ADMISSION_MAX_QUEUE_MS)
    if max_in_flight <= 0 and max_queue_ms <= 0:
        return app
    static = "/" + str(settings.STATIC_URL).lstrip("/")
    return Admission(
        app,
        max_in_flight=max_in_flight,
        max_queue_ms=max_queue_ms,
        retry_after=int(settings.ADMISSION_RETRY_AFTER_SECONDS),
        exempt=[*settings.ADMISSION_EXEMPT_PATHS, static],
    )
