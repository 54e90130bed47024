"""Provider calls in flight together, not one after another.

A provider answers in 100-300 ms; called one after another, a worker process sends a few
dozen messages a second whatever its CPU could do. Each provider with an in-flight limit
(`PROVIDER_MAX_IN_FLIGHT`, set for the HTTP providers only) gets one pool of that many threads
per process, shared by every batch of the process: at most that many calls to it are in
flight from this process, over the SDK's keep-alive connections (sized to the same limit).

A pool starts all its threads when it is made (the process's first batch for that provider),
so that a worker's memory is the same at any backlog: threads made as calls needed them took a
process from a few to its limit's worth (about 0.4 MiB each) only under a deep backlog, and
its memory grew with the load. Bounded either way, by the setting; flat this way.

The pool's threads run the provider call only (calls.call_run), never the database: database
connections stay one per worker thread, whatever the limit. Providers without a limit (the
in-app inbox, which writes to the database; SMTP, whose connection is not thread-safe; the
console) are called in the batch's own thread, one after another, as before.

Each call's outcome is handed to the batch's `heard` (its breaker's ear) by the thread that
made it, at once and one at a time: a failure that opens the breaker sets `stop` before that
thread takes its next call. Once `stop` is set (the breaker opened, the batch's time ran out),
calls not yet started never start and come back as None, for the batch to hand back
unattempted: past the opening failure, only the calls already in flight reach the provider.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from django.conf import settings
from django.utils import timezone

from apps.core import metrics
from apps.deliveries.calls import Prepared, Sent, call_run
from apps.deliveries.providers import provider_max_in_flight
from notifier.errors import TransientFailure
from notifier.providers.base import Provider

logger = logging.getLogger(__name__)

# A batch that writes after every call (SEND_BATCH_RECORD_SECONDS=0) still waits this long
# between looks, instead of spinning while its calls are in flight.
MIN_WAIT_SECONDS = 0.01

# A finished call, or None for one that never started.
Finished = tuple[Prepared, Sent | None]


# How long a new pool waits for its threads to start (a loaded machine is slow to make 128).
PRESTART_TIMEOUT_SECONDS = 10.0

_pools: dict[str, ThreadPoolExecutor | None] = {}
_pools_lock = threading.Lock()


def _prestart(pool: ThreadPoolExecutor, count: int) -> None:
    """Make the pool start `count` threads now. ThreadPoolExecutor adds a thread per submit
    only while none is idle, so each placeholder task holds its thread until all have
    started. A timeout (a machine too loaded to start them in time) leaves the rest to be
    made on demand, as without this."""
    started = threading.Barrier(count + 1, timeout=PRESTART_TIMEOUT_SECONDS)

    def hold() -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            started.wait()

    for _ in range(count):
        pool.submit(hold)
    try:
        started.wait()
    except threading.BrokenBarrierError:
        logger.warning(
            "provider pool: not every thread started within %ss", PRESTART_TIMEOUT_SECONDS
        )


def provider_pool(name: str) -> ThreadPoolExecutor | None:
    """The process's threads for this provider's calls (None: call it inline). One per
    provider and process, however many batch threads ask for it at once."""
    with _pools_lock:
        if name not in _pools:
            limit = provider_max_in_flight(name)
            pool = None
            if limit > 1:
                pool = ThreadPoolExecutor(max_workers=limit, thread_name_prefix=f"send-{name}")
                _prestart(pool, limit)
            _pools[name] = pool
        return _pools[name]


def provider_pools_clear() -> None:
    """Forget the pools (their threads finish what they have): settings changed, in tests."""
    with _pools_lock:
        for pool in _pools.values():
            if pool is not None:
                pool.shutdown(wait=False)
        _pools.clear()


def _run(
    provider: Provider,
    prepared: Prepared,
    stop: threading.Event,
    heard: Callable[[Sent], None],
    lock: threading.Lock,
) -> Sent | None:
    if stop.is_set():
        return None
    try:
        with metrics.provider_in_flight(provider=provider.name):
            sent = prepared.context.run(call_run, provider, prepared)
    except Exception as exc:  # call_run classifies every failure; this is a bug of ours
        logger.exception("send failed unexpectedly")
        now = timezone.now()
        failure = TransientFailure("worker error", detail=repr(exc)[:300])
        return Sent(now, now, 0, failure, worker_error=True)
    try:
        with lock:
            heard(sent)
    except Exception:  # the send happened: its outcome matters more than the breaker's news
        logger.exception("breaker not told of a send")
    return sent


class Flight:
    """A batch's provider calls, started at once (up to the provider's limit, the rest queued
    behind it in the shared pool), read back as they finish."""

    def __init__(
        self,
        provider: Provider,
        prepared: list[Prepared],
        *,
        stop: threading.Event,
        heard: Callable[[Sent], None],
    ) -> None:
        self._args = (stop, heard, threading.Lock())
        self._provider = provider
        self._pool = provider_pool(provider.name)
        self._inline = list(prepared) if self._pool is None else []
        self._futures: dict[Future[Sent | None], Prepared] = {}
        if self._pool is not None:
            for n, one in enumerate(prepared):
                try:
                    self._futures[self._pool.submit(_run, provider, one, *self._args)] = one
                except RuntimeError:  # the interpreter is shutting down: start no more
                    stop.set()
                    self._inline = prepared[n:]  # they find `stop` set: never started
                    break
        self._pending = set(self._futures)

    def finished(self, *, every: float) -> Iterator[list[Finished]]:
        """The calls as they finish, a group at a time; while calls are pending a group comes
        at least every `every` seconds (maybe empty), so the batch can write as it goes."""
        while self._inline:
            one = self._inline.pop(0)
            yield [(one, _run(self._provider, one, *self._args))]
        every = max(every, MIN_WAIT_SECONDS)
        while self._pending:
            done, self._pending = wait(self._pending, timeout=every, return_when=FIRST_COMPLETED)
            yield [(self._futures[f], f.result()) for f in done]

    def rest(self) -> list[Finished]:
        """Stop what has not started and wait for what has, up to the provider's timeout (the
        batch is failing: what was sent must still be recorded if it can be). A call still
        running after that is left out: its delivery stays `sending`, for the reconciler."""
        self._args[0].set()
        left: list[Finished] = [(one, None) for one in self._inline]
        self._inline = []
        done, self._pending = wait(self._pending, timeout=settings.PROVIDER_TIMEOUT_SECONDS + 5)
        left += [(self._futures[f], f.result()) for f in done]
        return left
