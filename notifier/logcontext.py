"""Structured, masked logs: a per-task context (ids, channel, provider, attempt) carried by a
context variable, and filters that put it on every record and mask personal data.

Both filters are installed on the root handler (settings `LOGGING`), so every line written by
the web, the workers and beat goes through them, whoever logged it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from notifier.masking import is_secret_name, mask_text

# The fields a log line about a delivery carries.
CONTEXT_FIELDS = ("notification_id", "delivery_id", "channel", "provider", "attempt")

_context: ContextVar[Mapping[str, Any] | None] = ContextVar("notifier_log_context", default=None)

# Attributes every LogRecord has; anything else on a record came from `extra=` or a filter.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)
# Identifiers and numbers we put there ourselves: never personal data, never masked (a UUID's
# digit groups could otherwise look like a phone number).
_TRUSTED = frozenset({"notification_id", "delivery_id", "attempt", "task_id", "dead_letter_id"})


def log_context() -> dict[str, Any]:
    """The fields bound for the current task or request."""
    return dict(_context.get() or {})


def log_context_bind(**fields: Any) -> None:
    """Add fields to the current context (None values are dropped)."""
    merged = log_context()
    merged.update({k: v for k, v in fields.items() if v is not None})
    _context.set(merged)


def log_context_clear() -> None:
    """Forget the context: called when a task or request starts and ends."""
    _context.set(None)


@contextmanager
def log_context_scope(**fields: Any) -> Iterator[None]:
    """Bind fields for the duration of a block, then restore what was there before."""
    token = _context.set({**log_context(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Copies the bound context onto each record (explicit `extra=` fields win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (_context.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def mask_value(value: Any) -> Any:
    """Mask every string inside a value (strings, and lists/dicts of them); a dict entry named
    like a credential (`Authorization`, `api_key`, `token`...) is masked whole."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: "***" if is_secret_name(k) else mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [mask_value(v) for v in value]
    return value


class MaskingFilter(logging.Filter):
    """Masks email addresses and phone numbers in the message, its arguments, every extra
    field, and the exception and stack text, before any handler formats the record."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg} {record.args!r}"
        record.msg = mask_text(message)
        record.args = None
        for key, value in list(record.__dict__.items()):
            if key in _STANDARD or key in _TRUSTED:
                continue
            if isinstance(value, str | Mapping | list | tuple | set):
                setattr(record, key, mask_value(value))
            elif not isinstance(value, int | float | bool | type(None)):
                # An object (e.g. Django's `request`) is written as its repr: mask that.
                setattr(record, key, mask_text(repr(value)))
        if record.exc_info:
            record.exc_text = mask_text(self._formatter.formatException(record.exc_info))
            record.exc_info = None
        elif isinstance(record.exc_text, str):
            record.exc_text = mask_text(record.exc_text)
        if isinstance(record.stack_info, str):
            record.stack_info = mask_text(record.stack_info)
        return True


def mask_every_handler() -> int:
    """Put the context and masking filters on every handler of every logger that lacks them.

    LOGGING puts them on the root handler, but libraries install handlers of their own that
    records reach without passing the root's: Celery's `celery.task` logger (propagate off, a
    plain stderr handler), gunicorn's error and access loggers, a `--log-config` of uvicorn's.
    A filter on a handler sees every record that handler writes, propagated ones included.
    Returns how many handlers were given them."""
    loggers: list[logging.Logger] = [logging.getLogger()]
    loggers += [
        logger
        for logger in logging.Logger.manager.loggerDict.values()
        if isinstance(logger, logging.Logger)
    ]
    added = 0
    for logger in loggers:
        for handler in logger.handlers:
            if isinstance(handler, logging.NullHandler):
                continue
            if not any(isinstance(f, MaskingFilter) for f in handler.filters):
                handler.addFilter(ContextFilter())
                handler.addFilter(MaskingFilter())
                added += 1
    return added
