"""Notification throttles (a template's or a request's `throttle`): per recipient, at most
`limit` notifications in `window` for each rendered `key`, counted in the service's Redis.

One Lua script takes a slot, so the count is atomic however many requests race (20 parallel
triggers with limit 1: exactly one slot is taken). The counter is a hash: `n`, the slots taken,
and one field per notification holding a slot until its transaction commits (`throttle_holder`:
its Idempotency-Key, else its id), whose value names the attempt that took it. The first slot
creates the hash with the window as its TTL, so the window opens with the first notification
(not aligned to the clock). Over the limit the script counts nothing (a throttled notification
holds no slot). Once the attempt commits, its holder fields are deleted (one pipelined call
per notification or fan-out chunk) and `n` alone stays: a replay of the request returns the
stored response without taking a slot and a resumed fan-out starts after its committed cursor,
so nothing needs them, and a counter does not grow with every notification of its window.

A slot belongs to its notification, not to one attempt: a process killed between taking slots
and its commit (SIGKILL, OOM: no give-back runs) leaves them held, and the notification's own
re-run (the fan-out's resumed chunk, a POST retried with its Idempotency-Key) takes them over
instead of counting itself over the limit. Slots taken by an attempt that then fails to commit
are given back, each only while that attempt still holds it: the slot of an ended window (or
one a retry took over) is left alone, so a slow failure can never free a slot of the next
window or one a committed retry holds. Redis down: the request is a 503 (nothing is created);
a notification without a throttle does not touch this Redis at all. `critical` never takes a
slot.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING, Any

from django.db import transaction

from apps.core.broker import service_client
from apps.core.errors import InvalidInput
from notifier.rendering import RenderError, required_variables
from notifier.workflows import Throttle

if TYPE_CHECKING:
    from apps.deliveries.models import Notification

logger = logging.getLogger(__name__)

PREFIX = "notifier:throttle:"
# KEYS[1] the counter; ARGV[1] the window in ms, ARGV[2] the limit, ARGV[3] the holder's field,
# ARGV[4] the attempt. Returns 1 (a slot held: taken now, or already this holder's, which the
# attempt takes over) or 0 (over the limit: nothing taken).
_TAKE = """
if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
  return 1
end
local fresh = redis.call('EXISTS', KEYS[1]) == 0
if not fresh and tonumber(redis.call('HGET', KEYS[1], 'n')) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
redis.call('HINCRBY', KEYS[1], 'n', 1)
if fresh then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
"""
# KEYS[1] the counter; ARGV[1] the holder's field, ARGV[2] the attempt. Gives the slot back only
# while this attempt holds it (an ended window's counter is not recreated, a later window's or a
# retry's slot is not touched).
_GIVE_BACK = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return redis.call('HINCRBY', KEYS[1], 'n', -1)
end
return -1
"""


def throttle_holder(notification: Notification) -> str:
    """Who holds a notification's slots, the same across its attempts: its Idempotency-Key
    (a retried POST builds a new notification id), else its id (a fan-out's chunks)."""
    if notification.idempotency_key:
        key = hashlib.sha256(notification.idempotency_key.encode()).hexdigest()[:32]
        return f"k:{key}"
    return f"id:{notification.id}"


def throttle_key(
    *, client_id: int, template: str, recipient_id: int, throttle: Throttle, key: str
) -> str:
    """The counter of one recipient and rendered key. The limit and the window are part of it:
    a throttle changed mid-window starts its own count instead of inheriting a TTL it lacks."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    window_s = int(throttle.window.total_seconds())
    return f"{PREFIX}{client_id}:{template}:{recipient_id}:{throttle.limit}/{window_s}s:{digest}"


class Slots:
    """The slots one attempt took (within the limit), to give back if it does not commit."""

    def __init__(self) -> None:
        self.attempt = uuid.uuid4().hex
        self.taken: list[tuple[str, str]] = []  # (counter, holder)

    def take(self, throttle: Throttle, counters: Sequence[str], *, holder: str) -> list[bool]:
        """Take a slot for `holder` on each counter (one round trip); True where within the
        limit (a slot the holder already had included)."""
        window_ms = int(throttle.window.total_seconds() * 1000)
        pipe = service_client(fail_fast=True).pipeline(transaction=False)
        for counter in counters:
            pipe.eval(_TAKE, 1, counter, window_ms, throttle.limit, holder, self.attempt)
        # Every counter is recorded before the call: should it fail after some scripts ran (a
        # read timeout, a reset), the give-back returns those; for a slot this attempt does
        # not hold it is a no-op (_GIVE_BACK acts only while the field names this attempt).
        start = len(self.taken)
        self.taken.extend((counter, holder) for counter in counters)
        allowed = [int(answer) == 1 for answer in pipe.execute()]
        taken = [(counter, holder) for counter, ok in zip(counters, allowed, strict=True) if ok]
        self.taken[start:] = taken
        if taken and transaction.get_connection().in_atomic_block:
            transaction.on_commit(lambda: _holders_drop(taken))
        return allowed

    def give_back(self) -> None:
        pipe = service_client(fail_fast=True).pipeline(transaction=False)
        for counter, holder in self.taken:
            pipe.eval(_GIVE_BACK, 1, counter, holder, self.attempt)
        pipe.execute()
        self.taken.clear()


def _holders_drop(taken: Sequence[tuple[str, str]]) -> None:
    """After the commit the slots are the committed notification's for good: drop the holder
    fields, keep `n`. Unconditionally (not only this attempt's): a concurrent retry with the
    same Idempotency-Key that took one over must not give back a slot this commit owns. An
    ended window's counter is not recreated (HDEL of a missing key is a no-op)."""
    try:
        pipe = service_client(fail_fast=True).pipeline(transaction=False)
        for counter, holder in taken:
            pipe.hdel(counter, holder)
        pipe.execute()
    except Exception as exc:  # the fields stay until their window ends, as they would have
        logger.warning("throttle holders not dropped: %s: %s", type(exc).__name__, exc)


@contextmanager
def throttle_slots() -> Iterator[Slots]:
    """Slots taken inside the block are given back if the block raises."""
    slots = Slots()
    try:
        yield slots
    except BaseException:
        if slots.taken:
            with suppress(Exception):
                slots.give_back()
        raise


def recipients_throttled(
    *,
    slots: Slots,
    throttle: Throttle | None,
    notification: Notification,
    recipient_ids: Sequence[int],
) -> set[int]:
    """Take one slot per recipient for the notification; the ids over the limit."""
    if throttle is None:
        return set()
    key = throttle_rendered_key(throttle, notification.variables)
    counters = [
        throttle_key(
            client_id=notification.client_id,
            template=notification.template.key,
            recipient_id=pk,
            throttle=throttle,
            key=key,
        )
        for pk in recipient_ids
    ]
    allowed = slots.take(throttle, counters, holder=throttle_holder(notification))
    return {pk for pk, ok in zip(recipient_ids, allowed, strict=True) if not ok}


def throttle_rendered_key(throttle: Throttle, variables: dict[str, Any]) -> str:
    """The throttle's key for these variables; InvalidInput (the caller's 400) if it needs one
    they lack or does not render. A topic's request checks it before its 202."""
    # A variable the request does not supply would render "" and merge every key into one.
    missing = [name for name in required_variables([throttle.key]) if name not in variables]
    if missing:
        raise InvalidInput(
            f"The throttle's key needs variables the request lacks: {', '.join(missing)}.",
            fields={"throttle": {"key": [f"missing variable {name!r}" for name in missing]}},
        )
    try:
        return throttle.key_for(variables)
    except RenderError as exc:  # over the render limits with these variables
        raise InvalidInput(
            f"The throttle's key does not render: {exc}.",
            fields={"throttle": {"key": [f"does not render with these variables: {exc}"]}},
        ) from exc
