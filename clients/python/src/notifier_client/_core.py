"""What both clients share: a call (what to send, how to read the answer), the retry policy
and the reading of answers. The transports (client.py) only send, sleep and loop."""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from importlib import metadata
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

import httpx

from notifier_client.errors import (
    APIConnectionError,
    InvalidResponseError,
    error_from_response,
)

try:
    VERSION = metadata.version("notifier-client")
except metadata.PackageNotFoundError:  # imported from a source tree, not installed
    VERSION = "0+unknown"

T = TypeVar("T")
JSON = dict[str, Any]

# Statuses that say "the same request may succeed later" (the API sends Retry-After with both).
RETRY_STATUSES = frozenset({429, 503})
# Failures before the request reached the service: it cannot have acted, so every call retries.
CONNECT_ERRORS: tuple[type[Exception], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
)
# Failures once the request was (or may have been) sent: the service may have acted and its
# answer been lost. Only an idempotent call retries them: GET, PUT, DELETE, and the POSTs the
# service deduplicates (POST /notifications, by its Idempotency-Key). Other POSTs (a dead
# letter's replay, a recipient token, subscribing) would act twice: APIConnectionError at once.
SENT_ERRORS: tuple[type[Exception], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
)
RETRY_ERRORS = CONNECT_ERRORS + SENT_ERRORS
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
# The 503 that overload admission answers before Django runs: nothing was done, any call
# retries it. Another 503 ("unavailable": a database, Redis or the broker down) is answered
# before a write commits, but some POSTs read again after committing (a replay, a cancel,
# subscribing) and a failure there is a 503 too: only idempotent calls retry it.
NOTHING_DONE_CODES = frozenset({"overloaded"})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry 429, 503 and connection errors.

    `max_attempts` counts the first try. Without `Retry-After` the wait is "full jitter":
    uniform in [0, min(backoff_cap, backoff_base * 2**(attempt - 1))]. With it, the wait is what
    the service asked plus up to `backoff_base` of jitter (never sooner); a `Retry-After` longer
    than `max_retry_after` is not waited out: the error is raised at once, carrying it."""

    max_attempts: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 8.0
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")

    def backoff(self, attempt: int) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
        return random.uniform(0, ceiling)  # noqa: S311 - jitter, not a secret

    def wait(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None: give up now."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is None:
            return self.backoff(attempt)
        if retry_after > self.max_retry_after:
            return None
        return retry_after + random.uniform(0, self.backoff_base)  # noqa: S311


_DELTA_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` in seconds: delta-seconds or an HTTP-date (RFC 9110 10.2.3); None when
    absent or unreadable. A date in the past is 0. Delta-seconds are digits (a fraction is
    tolerated): a sign, an exponent, `_` or a bare `5.` are unreadable, not what `float` makes
    of them; digits too many for a float are infinite (longer than any max_retry_after)."""
    if not value or not value.strip():
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)  # "9" * 400 is inf, never an error
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; email.utils leaves "-0000" naive
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: `results`, and `cursor` for the next page (None on the last)."""

    results: list[T]
    cursor: str | None


@dataclass(frozen=True)
class Call(Generic[T]):
    """One API call: the request to make and how to read a successful answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    idempotency_key: str | None = None
    # Safe to repeat after a lost answer: the default for GET/HEAD/PUT/DELETE; a POST is only
    # when the service deduplicates it (it sends `idempotency_key` then) or it changes nothing.
    idempotent: bool | None = None

    @property
    def repeatable(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method in IDEMPOTENT_METHODS

    def with_cursor(self, cursor: str) -> Call[T]:
        return dataclasses.replace(self, params={**self.params, "cursor": cursor})


def segment(value: str) -> str:
    """`value` as one path segment (an external id may hold `/`, `?` or spaces)."""
    if not value:
        raise ValueError("an id in the path must not be empty")
    return quote(value, safe="")


def invalid_response(response: httpx.Response, detail: object) -> InvalidResponseError:
    """The error for a success `response` whose body is not what the call reads."""
    request = response.request
    return InvalidResponseError(
        f"{request.method} {request.url}: {response.status_code} answered with a body that is "
        f"not this call's JSON: {detail}",
        status=response.status_code,
        idempotency_key=request.headers.get("Idempotency-Key"),
    )


def parse_json(response: httpx.Response) -> JSON:
    body = response.json()
    if not isinstance(body, dict):
        raise invalid_response(response, f"expected a JSON object, got {type(body).__name__}")
    return body


def parse_none(response: httpx.Response) -> None:
    return None


def parse_page(response: httpx.Response) -> Page[JSON]:
    """`{"next": <url or null>, "results": [...]}`: the cursor is taken from `next`, so the next
    page is asked of the base URL this client was given (not of the host the server saw)."""
    body = parse_json(response)
    cursors = parse_qs(urlsplit(body.get("next") or "").query).get("cursor")
    return Page(results=list(body.get("results") or []), cursor=cursors[0] if cursors else None)


def params(**values: object) -> dict[str, str]:
    """Query parameters, leaving out the ones not given; booleans as `true`/`false`."""
    return {
        name: (str(value).lower() if isinstance(value, bool) else str(value))
        for name, value in values.items()
        if value is not None
    }


def body(**values: object) -> JSON:
    """A request body, leaving out the fields not given (None): the server's defaults apply."""
    return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class Settings:
    """What both clients are configured with."""

    base_url: str
    api_key: str
    timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of `httpx.Client` / `httpx.AsyncClient`."""
        return {
            "base_url": self.base_url.rstrip("/") + "/api/v1",
            "timeout": self.timeout,
            "headers": {
                "Authorization": f"Bearer {self.api_key}",
                "Accept": "application/json",
                "User-Agent": f"notifier-client-python/{VERSION}",
            },
        }

    def request_options(self, call: Call[Any]) -> dict[str, Any]:
        """Keyword arguments of `build_request` for `call`. A call the service deduplicates gets
        its idempotency key here, once: every retry re-sends this same request, key included."""
        headers = {}
        if call.idempotency_key is not None:
            headers["Idempotency-Key"] = call.idempotency_key
        return {
            "method": call.method,
            "url": call.path,
            "params": dict(call.params),
            "json": call.json,
            "headers": headers,
        }

    def build(self, http: httpx.Client | httpx.AsyncClient, call: Call[Any]) -> httpx.Request:
        """The request of `call`; APIConnectionError when it cannot be made (an invalid URL)."""
        try:
            return http.build_request(**self.request_options(call))
        except httpx.InvalidURL as exc:
            raise APIConnectionError(f"{call.method} {call.path}: {exc}") from exc

    def retrying(self, call: Call[Any]) -> Retrying:
        return Retrying(self.retry, repeatable=call.repeatable)


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


class Retrying:
    """The retry bookkeeping of one call: after each attempt, how long to wait before the next,
    or None when there is none to make. `repeatable`: the call may be repeated after the service
    may have acted on it (Call.repeatable)."""

    def __init__(self, policy: RetryPolicy, *, repeatable: bool) -> None:
        self.policy = policy
        self.repeatable = repeatable
        self.attempts = 0

    def after_response(self, response: httpx.Response) -> float | None:
        """None: `response` is final (not 429/503, or not to be retried, or the retries are
        spent). A 429 comes from the rate limit, before the view acts: any call retries it."""
        self.attempts += 1
        if response.status_code not in RETRY_STATUSES:
            return None
        if (
            response.status_code == 503
            and not self.repeatable
            and _error_code(response) not in NOTHING_DONE_CODES
        ):
            return None
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return self.policy.wait(self.attempts, retry_after)

    def after_error(self, request: httpx.Request, error: Exception) -> float:
        """The wait before the next attempt after httpx's `error`. APIConnectionError once the
        retries are spent, or at once when the call is not to be repeated (the request may have
        reached the service) or the error is not one of RETRY_ERRORS (an unsupported scheme,
        a protocol error of our own); InvalidResponseError for a body that does not decode."""
        self.attempts += 1
        key = request.headers.get("Idempotency-Key")
        if isinstance(error, httpx.DecodingError):
            raise InvalidResponseError(
                f"{request.method} {request.url}: {error}", idempotency_key=key
            ) from error
        retried = isinstance(error, CONNECT_ERRORS) or (
            self.repeatable and isinstance(error, RETRY_ERRORS)
        )
        wait = self.policy.wait(self.attempts, None) if retried else None
        if wait is None:
            raise APIConnectionError(
                f"{request.method} {request.url}: {error!r} ({self.attempts} attempts)",
                idempotency_key=key,
            ) from error
        return wait


def result(call: Call[T], response: httpx.Response) -> T:
    """The parsed answer of a final `response`, or its typed error."""
    if response.is_success:
        try:
            return call.parse(response)
        except ValueError as exc:  # not JSON, not UTF-8
            raise invalid_response(response, exc) from exc
    raise error_from_response(response, parse_retry_after(response.headers.get("Retry-After")))
