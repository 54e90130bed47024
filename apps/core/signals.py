"""Signals sent INSIDE the sender's transaction to listeners that must never undo it.

The lifecycle announces a status change (and the recipients app an unsubscribe) in the
transaction that writes it, so that a listener's rows (the webhooks' outbox) commit or roll back
with the change. A listener that fails there must cost its own work only: a plain Signal.send
lets its exception abort the sender's transaction (a send the provider already accepted rolls
back, and the reconciler sends it again), and on PostgreSQL a failed statement poisons the
transaction even when the exception is caught. Django's send_robust catches the exception but
takes no savepoint, so this class runs each receiver in its own savepoint (transaction.atomic)
and logs, counts (notifier_events_dropped) and swallows what it raises.

A receiver may be connected with `idle`, a cheap check (no query) that it has nothing to do
now: then it is not called and no savepoint is taken (two round trips saved per send). The
check is kept by the receiver's id, beside a weak reference to it (a weakly connected receiver
is not kept alive by it), and dropped by disconnect.

Only `send` runs receivers: `send_robust` is `send` (already robust), and the async sends raise
NotImplementedError, as an async receiver would run outside the sender's transaction.
"""

from __future__ import annotations

import logging
import types
import weakref
from collections.abc import Callable, Hashable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.db import transaction
from django.dispatch import Signal

from apps.core import metrics

logger = logging.getLogger(__name__)

Receiver = Callable[..., Any]


def receiver_name(receiver: Receiver) -> str:
    return f"{getattr(receiver, '__module__', '?')}.{getattr(receiver, '__qualname__', receiver)}"


class GuardedSignal(Signal):
    """A Signal whose synchronous receivers each run in a savepoint; one that raises is rolled
    back to it, logged and counted, and the sender and the other receivers carry on."""

    def __init__(self) -> None:
        super().__init__()
        # The receiver's id -> (a reference to it, its idle check); dispatch_uid -> that id.
        self._idle: dict[Hashable, tuple[Callable[[], Any], Callable[[], bool]]] = {}
        self._idle_uids: dict[Hashable, Hashable] = {}

    def connect(
        self,
        receiver: Receiver,
        sender: Any = None,
        weak: bool = True,
        dispatch_uid: Any = None,
        *,
        idle: Callable[[], bool] | None = None,
    ) -> None:
        if iscoroutinefunction(receiver):
            raise TypeError("A GuardedSignal runs its receivers in the sender's transaction: sync.")
        super().connect(receiver, sender=sender, weak=weak, dispatch_uid=dispatch_uid)
        if idle is not None:
            key = _receiver_id(receiver)
            self._idle[key] = (_reference(receiver, weak=weak), idle)
            if dispatch_uid is not None:
                self._idle_uids[dispatch_uid] = key

    def disconnect(
        self, receiver: Receiver | None = None, sender: Any = None, dispatch_uid: Any = None
    ) -> bool:
        key = self._idle_uids.pop(dispatch_uid, None) if dispatch_uid is not None else None
        if key is None and receiver is not None:
            key = _receiver_id(receiver)
        if key is not None:
            self._idle.pop(key, None)
        return super().disconnect(receiver, sender=sender, dispatch_uid=dispatch_uid)

    def send_robust(self, sender: Any, **named: Any) -> list[tuple[Receiver, Any]]:
        """`send`: it is robust already, and each receiver has its savepoint."""
        return self.send(sender, **named)

    async def asend(self, sender: Any, **named: Any) -> list[tuple[Receiver, Any]]:
        raise NotImplementedError("A GuardedSignal runs in the sender's transaction: use send.")

    async def asend_robust(self, sender: Any, **named: Any) -> list[tuple[Receiver, Any]]:
        raise NotImplementedError("A GuardedSignal runs in the sender's transaction: use send.")

    def send(self, sender: Any, **named: Any) -> list[tuple[Receiver, Any]]:
        if not self.receivers:
            return []
        receivers, _ = self._live_receivers(sender)  # connect() admits no async receiver
        responses: list[tuple[Receiver, Any]] = []
        for receiver in receivers:
            if self._is_idle(receiver):
                continue
            try:
                with transaction.atomic():
                    responses.append((receiver, receiver(signal=self, sender=sender, **named)))
            except Exception as exc:
                name = receiver_name(receiver)
                logger.exception(
                    "signal receiver failed: its work is dropped, the change stands",
                    extra={"receiver": name},
                )
                metrics.events_dropped(receiver=name)
                responses.append((receiver, exc))
        return responses

    def _is_idle(self, receiver: Receiver) -> bool:
        entry = self._idle.get(_receiver_id(receiver))
        if entry is None or entry[0]() != receiver:  # none, or an id reused by another
            return False
        idle = entry[1]
        try:
            return idle()
        except Exception:  # unknown: call the receiver (in its savepoint)
            logger.warning("signal receiver's idle check failed", exc_info=True)
            return False


def _receiver_id(receiver: Receiver) -> Hashable:
    """A receiver's identity as Django's dispatcher takes it (its private _make_id, untyped): a
    bound method by its object and function, since each access makes a new method object."""
    if isinstance(receiver, types.MethodType):
        return (id(receiver.__self__), id(receiver.__func__))
    return id(receiver)


def _reference(receiver: Receiver, *, weak: bool) -> Callable[[], Any]:
    """A weak reference to a weakly connected receiver (a bound method's: WeakMethod)."""
    if not weak:
        return lambda: receiver
    if isinstance(receiver, types.MethodType):
        return weakref.WeakMethod(receiver)
    return weakref.ref(receiver)
