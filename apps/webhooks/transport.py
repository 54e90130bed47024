"""One POST of a signed message to the checked address (addresses.Target), with the endpoint's
host name kept in the Host header and in TLS (SNI and certificate check), within one overall
time budget; redirects are not followed (a 3xx is a failure) and proxies from the environment
are not used. Only the first RESPONSE_EXCERPT_BYTES of the answer are read."""

from __future__ import annotations

import datetime as dt
import email.utils
import time
from dataclasses import dataclass

import httpx

from apps.webhooks.addresses import Target

# What the attempt log keeps of a response body.
RESPONSE_EXCERPT_BYTES = 1024
USER_AGENT = "notifier-webhooks/1"


@dataclass(frozen=True)
class Answer:
    """How one attempt went: `ok` for a 2xx; else the status (None: no answer) and `error`."""

    ok: bool
    status_code: int | None
    duration_ms: int
    excerpt: str = ""
    error: str = ""
    retry_after: float | None = None


def retry_after_seconds(value: str | None, *, now: dt.datetime) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date (None when absent or unreadable)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def _host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default else f"{host}:{target.port}"


def post(target: Target, *, body: str, headers: dict[str, str], timeout: float) -> Answer:
    """POST `body` to the target's checked address. Never raises for the receiver's fault."""
    url = httpx.URL(target.url).copy_with(host=target.address)
    started = time.monotonic()
    deadline = started + timeout
    request_headers = {
        **headers,
        "host": _host_header(target),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST", url, content=body.encode(), headers=request_headers, extensions=extensions
            ) as response,
        ):
            excerpt = b""
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= RESPONSE_EXCERPT_BYTES or time.monotonic() > deadline:
                    break
            # At most 1 KiB whatever the bytes (a cut character is dropped); no NULs, which a
            # PostgreSQL text column refuses.
            text = excerpt[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="ignore")
            text = text.replace("\x00", "")
            ok = 200 <= response.status_code < 300
            return Answer(
                ok=ok,
                status_code=response.status_code,
                duration_ms=took(),
                excerpt=text,
                error="" if ok else f"HTTP {response.status_code}",
                retry_after=retry_after_seconds(
                    response.headers.get("retry-after"), now=dt.datetime.now(dt.UTC)
                ),
            )
    except httpx.TimeoutException:
        return Answer(ok=False, status_code=None, duration_ms=took(), error="timed out")
    except httpx.HTTPError as exc:
        return Answer(
            ok=False, status_code=None, duration_ms=took(), error=f"{type(exc).__name__}: {exc}"
        )
