"""Which URLs a webhook may be sent to (SSRF): https to public addresses only, checked when an
endpoint is saved and again at each send against the addresses the host resolves to then; the
send then connects to the address checked (not a second lookup that DNS rebinding could answer
differently). WEBHOOKS_ALLOW_PRIVATE (development, tests) also allows http and private or
loopback addresses."""

from __future__ import annotations

import concurrent.futures
import ipaddress
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import idna
from django.conf import settings

URL_MAX = 2000
# A lookup at registration waits this long (a send waits what its deadline leaves).
RESOLVE_TIMEOUT_SECONDS = 5.0
# getaddrinfo cannot be interrupted: it runs in a pool of WEBHOOKS_CONCURRENCY threads (one per
# worker thread; at least MIN_LOOKUP_THREADS) and the caller stops waiting at its timeout (a
# lookup that hangs holds one of them until the resolver gives up; more wait: ResolverBusy).
MIN_LOOKUP_THREADS = 8
_resolver: concurrent.futures.ThreadPoolExecutor | None = None
_resolver_lock = threading.Lock()
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(Exception):
    """The URL may not be sent to (its message says why, for the API and the attempt log)."""


class ResolverBusy(UnsafeUrl):
    """The lookup could not even start within its time (every lookup thread held by hung
    lookups): nothing is known of the host; an attempt is deferred, not failed."""


def _lookup_pool() -> concurrent.futures.ThreadPoolExecutor:
    global _resolver
    with _resolver_lock:
        if _resolver is None:
            threads = max(int(settings.WEBHOOKS_CONCURRENCY), MIN_LOOKUP_THREADS)
            _resolver = concurrent.futures.ThreadPoolExecutor(
                max_workers=threads, thread_name_prefix="webhook-dns"
            )
        return _resolver


@dataclass(frozen=True)
class Target:
    """Where one send goes: the URL as registered, and the checked addresses to connect to (in
    turn, until one answers)."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _allow_private() -> bool:
    return bool(settings.WEBHOOKS_ALLOW_PRIVATE)


def url_parts(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a well-formed endpoint URL; UnsafeUrl otherwise."""
    if len(url) > URL_MAX:
        raise UnsafeUrl(f"Ensure this URL has at most {URL_MAX} characters.")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise UnsafeUrl("A URL may not contain whitespace or control characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"Not a valid URL: {exc}.") from None
    schemes = ("https", "http") if _allow_private() else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeUrl("The URL must start with https://.")
    if not parts.hostname:
        raise UnsafeUrl("The URL must name a host.")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("The URL may not carry credentials (user:password@).")
    if parts.fragment:
        raise UnsafeUrl("The URL may not have a #fragment.")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def url_normalized(url: str) -> str:
    """The URL with its host name as IDNA A-labels (`bücher.example` -> `xn--bcher-kva.example`,
    lower case), the form DNS, TLS and the Host header take; UnsafeUrl if it has none."""
    url_parts(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return url
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise UnsafeUrl(f"Not a valid host name: {exc}.") from None
    if ascii_host == host:
        return url
    netloc = ascii_host if parts.port is None else f"{ascii_host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


def address_problem(address: IPAddress) -> str:
    """Why a webhook may not go to this address ('' when it may)."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv4 address inside an IPv6 one is judged as itself (a 6to4 or Teredo relay
        # would carry the packets to it), then the IPv6 address as one; site-local (fec0::/10)
        # is private, though deprecated.
        if address.ipv4_mapped is not None:
            return address_problem(address.ipv4_mapped)
        if address.sixtofour is not None and (problem := address_problem(address.sixtofour)):
            return f"6to4 of {address.sixtofour}, {problem}"
        if address.teredo is not None:
            server, client = address.teredo
            if problem := address_problem(client) or address_problem(server):
                return f"Teredo of {client} via {server}, {problem}"
        if address.is_site_local:
            return "site-local"
    for test, what in (
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local (cloud metadata)"),
        (address.is_multicast, "multicast"),
        (address.is_unspecified, "unspecified"),
        (address.is_reserved, "reserved"),
        (address.is_private, "private"),
        (not address.is_global, "not a public address"),
    ):
        if test:
            return what
    return ""


def resolve(host: str, port: int, *, timeout: float = RESOLVE_TIMEOUT_SECONDS) -> list[IPAddress]:
    """Every address `host` resolves to now (a literal address is itself), within `timeout`."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    lookup = _lookup_pool().submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        found = lookup.result(timeout=max(timeout, 0.0))
    except concurrent.futures.TimeoutError:
        if lookup.cancel():  # still queued: it never ran
            raise ResolverBusy(
                f"The lookup of {host!r} could not start within {timeout:.1f} s (busy)."
            ) from None
        raise UnsafeUrl(f"The host {host!r} did not resolve within {timeout:.1f} s.") from None
    except (OSError, UnicodeError) as exc:
        raise UnsafeUrl(f"The host {host!r} does not resolve ({exc}).") from None
    # Scope ids (fe80::1%eth0) are dropped: the address itself is what is judged.
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]
    if not addresses:
        raise UnsafeUrl(f"The host {host!r} does not resolve.")
    return list(dict.fromkeys(addresses))


def checked_addresses(
    host: str, port: int, *, timeout: float = RESOLVE_TIMEOUT_SECONDS
) -> list[IPAddress]:
    """The host's addresses if every one may be sent to; UnsafeUrl naming the first that may
    not (one bad address is enough: a resolver may hand out any of them)."""
    addresses = resolve(host, port, timeout=timeout)
    if _allow_private():
        return addresses
    for address in addresses:
        problem = address_problem(address)
        if problem:
            raise UnsafeUrl(f"The host {host!r} resolves to {address}, which is {problem}.")
    return addresses


def url_check_at_registration(url: str) -> str:
    """An endpoint's URL as it is saved: well formed, and (unless private addresses are
    allowed) resolving to public addresses only; returned with an IDNA host (url_normalized).
    UnsafeUrl otherwise."""
    url = url_normalized(url)
    _, host, port = url_parts(url)
    if not _allow_private():
        checked_addresses(host, port)
    return url


def target_for_send(url: str, *, timeout: float = RESOLVE_TIMEOUT_SECONDS) -> Target:
    """The URL checked again at send time (its lookup within `timeout`), with the addresses
    to connect to. A host stored before URLs were normalized is taken as its A-labels."""
    url = url_normalized(url)
    scheme, host, port = url_parts(url)
    addresses = tuple(str(a) for a in checked_addresses(host, port, timeout=timeout))
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=addresses)
