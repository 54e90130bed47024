"""The two ways a send can fail, decided at the provider boundary."""

from __future__ import annotations

import datetime as dt
import email.utils
import time


class DeliveryFailure(Exception):
    """Base of the failures a provider adapter raises."""

    def __init__(self, reason: str, *, status_code: int | None = None, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.detail = detail


class TransientFailure(DeliveryFailure):
    """Worth retrying (timeout, connection error, 429, 5xx). `retry_after` in seconds, if told."""

    def __init__(
        self,
        reason: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(reason, status_code=status_code, detail=detail)
        self.retry_after = retry_after


class PermanentFailure(DeliveryFailure):
    """Will fail again the same way (invalid address or token, other 4xx)."""

    def __init__(
        self,
        reason: str,
        *,
        status_code: int | None = None,
        detail: str = "",
        deactivate_token: bool = False,
    ) -> None:
        super().__init__(reason, status_code=status_code, detail=detail)
        self.deactivate_token = deactivate_token


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header, in either form RFC 9110 allows: delta-seconds
    (`120`) or an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`, counted from `now`, a Unix
    time). None when absent or unreadable; never negative."""
    if not value or not value.strip():
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value.strip())
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # RFC 850 / asctime forms carry no zone: they mean GMT
            when = when.replace(tzinfo=dt.UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return max(seconds, 0.0)
