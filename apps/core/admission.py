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
"""

from __future__ import annotations

import json
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

# X-Request-Start values are epoch times in seconds (nginx `t=${msec}`), milliseconds (Heroku's
# router) or microseconds (Apache `%t`): told apart by magnitude.
_MS_THRESHOLD = 1e11
_US_THRESHOLD = 1e14


def queue_ms(header: str | None, now: float) -> float | None:
    """Milliseconds since the proxy stamped the request (None: no stamp, or not a number)."""
    if not header:
        return None
    try:
        stamp = float(header.strip().removeprefix("t="))
    except ValueError:
        return None
    if stamp > _US_THRESHOLD:
        stamp /= 1e6
    elif stamp > _MS_THRESHOLD:
        stamp /= 1e3
    return max(0.0, (now - stamp) * 1000)


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
            waited = queue_ms(environ.get("HTTP_X_REQUEST_START"), time.time())
            if waited is not None and waited > self.max_queue_ms:
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
