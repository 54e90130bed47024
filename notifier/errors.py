"""The two ways a send can fail, decided at the provider boundary."""

from __future__ import annotations


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


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds form); None when absent or unreadable."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(seconds, 0.0)
