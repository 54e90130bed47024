"""Notification throttles (a template's or a request's `throttle`): per recipient, at most
`limit` notifications in `window` for each rendered `key`, counted in the service's Redis.

One Lua script takes a slot, so the count is atomic however many requests race (20 parallel
triggers with limit 1: exactly one slot is taken). The counter is a hash: `n`, the slots taken,
and `w`, a token naming this window. The first slot creates it with the window as its TTL, so
the window opens with the first notification (not aligned to the clock). Over the limit the
script counts nothing (a throttled notification holds no slot).

Slots taken by a request that then fails to commit are given back, each only to the window it
was taken in: the give-back carries the window's token and does nothing once that window has
ended (a later window's counter has another token), so a slow failure can never free a slot
of the next window. Redis down: the request is a 503 (nothing is created); a notification
without a throttle does not touch this Redis at all. `critical` never takes a slot.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from apps.core.broker import service_client
from apps.core.errors import InvalidInput
from notifier.rendering import RenderError, required_variables
from notifier.workflows import Throttle

PREFIX = "notifier:throttle:"
# KEYS[1] the counter; ARGV[1] the window in ms, ARGV[2] the limit, ARGV[3] a fresh token for
# a new window. Returns {slot number (limit + 1: over the limit, nothing taken), window token}.
_TAKE = """
local window = redis.call('HGET', KEYS[1], 'w')
if not window then
  redis.call('HSET', KEYS[1], 'n', 1, 'w', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return {1, ARGV[3]}
end
local limit = tonumber(ARGV[2])
if tonumber(redis.call('HGET', KEYS[1], 'n')) >= limit then return {limit + 1, window} end
return {redis.call('HINCRBY', KEYS[1], 'n', 1), window}
"""
# KEYS[1] the counter; ARGV[1] the token of the window the slot was taken in. Gives it back only
# to that window (an ended window's counter is not recreated, a later one is not touched).
_GIVE_BACK = """
if redis.call('HGET', KEYS[1], 'w') == ARGV[1] then
  return redis.call('HINCRBY', KEYS[1], 'n', -1)
end
return -1
"""


def throttle_key(
    *, client_id: int, template: str, recipient_id: int, throttle: Throttle, key: str
) -> str:
    """The counter of one recipient and rendered key. The limit and the window are part of it:
    a throttle changed mid-window starts its own count instead of inheriting a TTL it lacks."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:24]
    window_s = int(throttle.window.total_seconds())
    return f"{PREFIX}{client_id}:{template}:{recipient_id}:{throttle.limit}/{window_s}s:{digest}"


class Slots:
    """The slots one request took (within the limit), to give back if it does not commit."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, str]] = []  # (counter, window token)

    def take(self, throttle: Throttle, counters: Sequence[str]) -> list[bool]:
        """Take a slot on each counter (one round trip); True where within the limit."""
        window_ms = int(throttle.window.total_seconds() * 1000)
        pipe = service_client(fail_fast=True).pipeline(transaction=False)
        for counter in counters:
            pipe.eval(_TAKE, 1, counter, window_ms, throttle.limit, uuid.uuid4().hex)
        answers = pipe.execute()
        allowed = [int(n) <= throttle.limit for n, _ in answers]
        self.taken.extend(
            (counter, _text(token))
            for counter, (_, token), ok in zip(counters, answers, allowed, strict=True)
            if ok
        )
        return allowed

    def give_back(self) -> None:
        pipe = service_client(fail_fast=True).pipeline(transaction=False)
        for counter, token in self.taken:
            pipe.eval(_GIVE_BACK, 1, counter, token)
        pipe.execute()
        self.taken.clear()


def _text(token: bytes | str) -> str:
    return token.decode() if isinstance(token, bytes) else token


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
    client_id: int,
    template: str,
    recipient_ids: Sequence[int],
    variables: dict[str, Any],
) -> set[int]:
    """Take one slot per recipient; the ids over the limit."""
    if throttle is None:
        return set()
    key = throttle_rendered_key(throttle, variables)
    counters = [
        throttle_key(
            client_id=client_id, template=template, recipient_id=pk, throttle=throttle, key=key
        )
        for pk in recipient_ids
    ]
    allowed = slots.take(throttle, counters)
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
