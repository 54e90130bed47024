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
now: then it is not called and no savepoint is taken (two round trips saved per send).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

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
        self._idle: dict[Receiver, Callable[[], bool]] = {}

    def connect(
        self,
        receiver: Receiver,
        sender: Any = None,
        weak: bool = True,
        dispatch_uid: Any = None,
        *,
        idle: Callable[[], bool] | None = None,
    ) -> None:
        if inspect.iscoroutinefunction(receiver):
            raise TypeError("A GuardedSignal runs its receivers in the sender's transaction: sync.")
        super().connect(receiver, sender=sender, weak=weak, dispatch_uid=dispatch_uid)
        if idle is not None:
            self._idle[receiver] = idle

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
        idle = self._idle.get(receiver)
        if idle is None:
            return False
        try:
            return idle()
        except Exception:  # unknown: call the receiver (in its savepoint)
            logger.warning("signal receiver's idle check failed", exc_info=True)
            return False
