"""One POST of a signed message to the checked addresses (addresses.Target, in turn), with the
endpoint's host name kept in the Host header and in TLS (SNI and certificate check), within one
overall deadline; redirects are not followed (a 3xx is a failure) and proxies from the environment
are not used. Only the first RESPONSE_EXCERPT_BYTES of the answer are read.

The deadline is real: httpx's timeouts are per socket operation, so a receiver that drips a
byte a second would hold the thread for ever (and Celery's soft time limit is not enforced
under -P threads). httpcore's network backend is swapped for one whose every connect, TLS
handshake, read and write waits at most until the deadline (DeadlineBackend): the attempt
ends by then, whatever the receiver does. httpx takes no backend, so the transport's pool is
built here as httpx builds it, with that backend (checked by the slow-drip tests)."""

from __future__ import annotations

import datetime as dt
import email.utils
import functools
import re
import ssl
import time
import typing
from dataclasses import dataclass

import httpcore
import httpx
from httpcore._backends.sync import SyncBackend

from apps.webhooks.addresses import Target

# What the attempt log keeps of a response body.
RESPONSE_EXCERPT_BYTES = 1024
USER_AGENT = "notifier-webhooks/1"
# Retry-After's delay-seconds: ASCII digits only ("²".isdigit() is true, float() refuses it).
_SECONDS = re.compile(r"[0-9]{1,10}")


@dataclass(frozen=True)
class Answer:
    """How one attempt went: `ok` for a 2xx; else the status (None: no answer) and `error`."""

    ok: bool
    status_code: int | None
    duration_ms: int
    excerpt: str = ""
    error: str = ""
    retry_after: float | None = None
    # No connection was made (the next checked address may be tried).
    unconnected: bool = False


def retry_after_seconds(value: str | None, *, now: dt.datetime) -> float | None:
    """`Retry-After` as seconds: a number, or an HTTP date (None when absent or unreadable)."""
    if not value:
        return None
    value = value.strip()
    if not value.isascii():
        return None
    if _SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose every wait ends by the deadline (ReadTimeout/WriteTimeout)."""

    def __init__(self, stream: httpcore.NetworkStream, deadline: float) -> None:
        self._stream = stream
        self._deadline = deadline

    def _left(self, timeout: float | None, error: type[Exception]) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise error("the attempt's deadline passed")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = self._left(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(
            self._stream.start_tls(ssl_context, server_hostname, left), self._deadline
        )

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, every wait of its streams cut at `deadline` (monotonic)."""

    def __init__(self, deadline: float) -> None:
        self._backend = SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ConnectTimeout("the attempt's deadline passed")
        timeout = left if timeout is None else min(timeout, left)
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _DeadlineStream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


@functools.cache
def verified_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context (certifi's CAs), built once per process: loading the
    CAs costs ~45 ms of CPU, and a context may serve every connection, in any thread."""
    return httpx.create_ssl_context(trust_env=False)


class _DeadlineTransport(httpx.HTTPTransport):
    def __init__(self, deadline: float) -> None:
        super().__init__(verify=verified_ssl_context(), trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=verified_ssl_context(),
            max_connections=1,
            network_backend=DeadlineBackend(deadline),
        )


def _host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default else f"{host}:{target.port}"


def post(
    target: Target, *, body: str, headers: dict[str, str], timeout: float, deadline: float
) -> Answer:
    """POST `body` to the target's checked addresses in turn (the next one only when a
    connection to this one could not be made), all done by `deadline` (monotonic; `timeout`
    caps each wait). Never raises for the receiver's fault."""
    started = time.monotonic()
    request_headers = {
        **headers,
        "host": _host_header(target),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    answer = Answer(ok=False, status_code=None, duration_ms=0, error="no address")
    for index, address in enumerate(target.addresses):
        left = len(target.addresses) - index
        # Each address may take its share of the time left to connect (the last, all of it).
        connect = max((deadline - time.monotonic()) / left, 0.001)
        answer = _post_one(
            target,
            address,
            body=body,
            headers=request_headers,
            timeout=httpx.Timeout(timeout, connect=min(connect, timeout)),
            deadline=deadline,
            started=started,
        )
        if not answer.unconnected or time.monotonic() >= deadline:
            break
    return answer


def _post_one(
    target: Target,
    address: str,
    *,
    body: str,
    headers: dict[str, str],
    timeout: httpx.Timeout,
    deadline: float,
    started: float,
) -> Answer:
    url = httpx.URL(target.url).copy_with(host=address)
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        with (
            httpx.Client(
                timeout=timeout,
                follow_redirects=False,
                trust_env=False,
                transport=_DeadlineTransport(deadline),
            ) as client,
            client.stream(
                "POST", url, content=body.encode(), headers=headers, extensions=extensions
            ) as response,
        ):
            excerpt = b""
            for chunk in response.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= RESPONSE_EXCERPT_BYTES:
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
    except httpx.ConnectTimeout:
        return Answer(
            ok=False, status_code=None, duration_ms=took(), error="timed out", unconnected=True
        )
    except httpx.TimeoutException:
        return Answer(ok=False, status_code=None, duration_ms=took(), error="timed out")
    except httpx.HTTPError as exc:
        return Answer(
            ok=False,
            status_code=None,
            duration_ms=took(),
            error=f"{type(exc).__name__}: {exc}",
            unconnected=isinstance(exc, httpx.ConnectError),
        )
