"""Overload admission, the WSGI wrapper on its own: what it admits, what it sheds and how, and
that a slot comes back however the request ended. (Through a real gunicorn and nginx:
tests/config/test_serving_proxy.py and test_serving_processes.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any

import pytest

from apps.core.admission import REQUESTS_SHED, STAMPS_IGNORED, Admission, queue_ms

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("t=1799999999.750", 250.0),  # nginx: t=${msec}, seconds
        ("1799999999750", 250.0),  # Heroku's router: milliseconds
        ("t=1799999999750000", 250.0),  # Apache %t: microseconds
        ("t=1799999999750000000", 250.0),  # nanoseconds
        ("t=1800000000.900", 0.0),  # a clock slightly ahead of ours: no wait, not negative
        ("t=1799999945.000", 55_000.0),  # old, but a proxy could have held it this long
        ("t=1800000002.000", None),  # > 1 s ahead: skewed clocks, not a wait
        ("t=1799999900.000", None),  # > 60 s old: no proxy held it this long
        ("t=1000000000.000", None),  # 2001: a client's stamp or a stuck clock
        ("t=0", None),
        ("t=-1", None),
        ("t=-inf", None),
        ("t=inf", None),
        ("t=nan", None),
        (None, None),
        ("", None),
        ("t=soon", None),
    ],
)
def test_queue_time_is_read_from_every_x_request_start_format(
    header: str | None, expected: float | None
) -> None:
    result = queue_ms(header, NOW)

    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=0.01)


class Gate:
    """A WSGI app whose API requests wait until released (others answer at once), counting
    how many ran."""

    def __init__(self) -> None:
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()
        self.ran = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.ran += 1
        if environ["PATH_INFO"].startswith("/api/"):
            self.entered.release()
            self.release.wait(10)
        start_response("202 Accepted", [("Content-Type", "application/json")])
        return [b"{}"]


def call(app: Any, path: str = "/api/v1/notifications", **environ: str) -> tuple[str, dict, bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    result = app({"PATH_INFO": path, **environ}, start_response)
    body = b"".join(result)
    close = getattr(result, "close", None)
    if close is not None:
        close()
    return seen["status"], seen["headers"], body


def admission(app: Any, *, max_in_flight: int = 1, max_queue_ms: float = 0) -> Admission:
    return Admission(
        app,
        max_in_flight=max_in_flight,
        max_queue_ms=max_queue_ms,
        retry_after=3,
        exempt=["/healthz", "/metrics", "/static/"],
    )


def test_past_the_in_flight_limit_a_request_is_shed_at_once_and_never_reaches_the_app() -> None:
    gate = Gate()
    app = admission(gate, max_in_flight=1)
    first = threading.Thread(target=call, args=(app,))
    first.start()
    assert gate.entered.acquire(timeout=5)

    started = time.monotonic()
    status, headers, body = call(app)
    took = time.monotonic() - started

    assert status == "503 Service Unavailable"
    assert headers["Retry-After"] == "3"
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["code"] == "overloaded"
    assert json.loads(body)["fields"] == {"reason": ["in_flight"]}
    assert took < 0.5
    assert gate.ran == 1  # the shed request never ran
    gate.release.set()
    first.join(5)


def test_probes_metrics_and_static_files_are_admitted_past_the_limit() -> None:
    gate = Gate()
    app = admission(gate, max_in_flight=1)
    first = threading.Thread(target=call, args=(app,))
    first.start()
    assert gate.entered.acquire(timeout=5)

    answers = [call(app, path)[0] for path in ("/healthz", "/metrics", "/static/admin/x.css")]
    api = call(app)[0]

    assert answers == ["202 Accepted"] * 3
    assert api == "503 Service Unavailable"  # the limit was indeed reached
    gate.release.set()
    first.join(5)


def test_the_slot_comes_back_after_the_response_and_after_an_error() -> None:
    gate = Gate()
    gate.release.set()
    app = admission(gate, max_in_flight=1)
    assert [call(app)[0] for _ in range(3)] == ["202 Accepted"] * 3

    def broken(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        raise RuntimeError("boom")

    failing = admission(broken, max_in_flight=1)
    for _ in range(2):
        with pytest.raises(RuntimeError):
            call(failing)
    failing.app = gate
    assert call(failing)[0] == "202 Accepted"


def test_the_slot_comes_back_when_the_body_is_read_even_if_never_closed() -> None:
    gate = Gate()
    gate.release.set()
    app = admission(gate, max_in_flight=1)

    def read_only() -> str:
        seen: dict[str, str] = {}
        body = app(
            {"PATH_INFO": "/api/v1/notifications"},
            lambda status, headers: seen.update(status=status),
        )
        b"".join(body)  # read to the end, close() never called
        return seen["status"]

    assert [read_only() for _ in range(3)] == ["202 Accepted"] * 3


def test_a_request_that_waited_past_the_queue_budget_is_shed() -> None:
    gate = Gate()
    gate.release.set()
    app = admission(gate, max_in_flight=0, max_queue_ms=100)
    stale = f"t={time.time() - 0.5:.3f}"
    fresh = f"t={time.time():.3f}"

    shed = call(app, HTTP_X_REQUEST_START=stale)
    admitted = call(app, HTTP_X_REQUEST_START=fresh)
    unstamped = call(app)

    assert shed[0] == "503 Service Unavailable"
    assert json.loads(shed[2])["fields"] == {"reason": ["queue_time"]}
    assert admitted[0] == unstamped[0] == "202 Accepted"
    assert gate.ran == 2


def test_a_stamp_that_cannot_be_a_wait_is_ignored_and_counted_never_shed() -> None:
    gate = Gate()
    gate.release.set()
    app = admission(gate, max_in_flight=0, max_queue_ms=100)
    ignored_before = STAMPS_IGNORED._value.get()
    shed_before = REQUESTS_SHED.labels(reason="queue_time")._value.get()

    statuses = [
        call(app, HTTP_X_REQUEST_START=stamp)[0]
        for stamp in ("t=1000000000.000", f"t={time.time() + 3600:.3f}", "t=0", "t=garbage")
    ]

    assert statuses == ["202 Accepted"] * 4
    assert gate.ran == 4
    assert STAMPS_IGNORED._value.get() - ignored_before == 4
    assert REQUESTS_SHED.labels(reason="queue_time")._value.get() == shed_before


def test_the_in_flight_limit_defaults_to_gunicorns_threads() -> None:
    def limit(**environ: str) -> str:
        return subprocess.run(
            [sys.executable, "-c",
             "from django.conf import settings as s; print(s.ADMISSION_MAX_IN_FLIGHT)"],
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test", **environ},
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip

    assert limit(WEB_THREADS="7") == "7"
    assert limit(WEB_THREADS="7", ADMISSION_MAX_IN_FLIGHT="2") == "2"
