"""Python client of the notifier service: `NotifierClient` (sync), `AsyncNotifierClient`,
typed errors, and `verify_webhook` for the service's signed webhooks."""

from notifier_client._core import VERSION as __version__
from notifier_client._core import Page, RetryPolicy, parse_retry_after
from notifier_client.calls import SendOptions
from notifier_client.client import AsyncNotifierClient, NotifierClient
from notifier_client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    ConflictError,
    InvalidResponseError,
    NotFoundError,
    NotifierError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    ServiceUnavailableError,
    ValidationError,
    WebhookVerificationError,
)
from notifier_client.webhooks import verify_webhook

__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncNotifierClient",
    "AuthenticationError",
    "ConflictError",
    "InvalidResponseError",
    "NotFoundError",
    "NotifierClient",
    "NotifierError",
    "Page",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RetryPolicy",
    "SendOptions",
    "ServerError",
    "ServiceUnavailableError",
    "ValidationError",
    "WebhookVerificationError",
    "__version__",
    "parse_retry_after",
    "verify_webhook",
]
