"""System checks (`manage.py check`, run at every start) for settings that must agree: timings,
and kombu's Redis layout with the broker adapter's."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from kombu.transport.redis import Channel as KombuRedisChannel

from apps.core import broker


@register()
def delivery_timing_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """Countdowns below the broker's visibility timeout; the stuck-send deadline above the
    provider timeouts (the threads pool cannot kill a send: those timeouts bound it)."""
    problems: list[CheckMessage] = []
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout", 3600)
    longest_countdown = settings.RETRY_CAP_SECONDS + settings.PROVIDER_WAIT_JITTER_SECONDS
    if longest_countdown >= visibility:
        problems.append(
            Error(
                f"RETRY_CAP_SECONDS + PROVIDER_WAIT_JITTER_SECONDS ({longest_countdown:g}) must "
                f"stay below the broker visibility timeout ({visibility}): longer countdowns "
                "are redelivered over and over.",
                id="deliveries.E001",
            )
        )
    # A batch starts no send after SEND_BATCH_SECONDS; the last one is bounded by its timeout.
    send_bound = settings.SEND_BATCH_SECONDS + max(
        settings.PROVIDER_TIMEOUT_SECONDS, settings.SMTP_TIMEOUT_SECONDS
    )
    if 2 * send_bound >= settings.SEND_STUCK_AFTER_SECONDS:
        problems.append(
            Warning(
                f"SEND_STUCK_AFTER_SECONDS ({settings.SEND_STUCK_AFTER_SECONDS}) should be well "
                f"above SEND_BATCH_SECONDS plus the provider timeouts ({send_bound:g} s): the "
                "reconciler could re-queue a send still in flight and cause a duplicate.",
                id="deliveries.W001",
            )
        )
    return problems


# kombu's Redis channel settings the broker adapter writes and reads by hand
# (apps.core.broker: kombu_envelope, queue_keys), and the adapter's value of each.
KOMBU_LAYOUT = {
    "sep": broker.PRIORITY_SEPARATOR,
    "priority_steps": list(broker.PRIORITY_STEPS),
    "global_keyprefix": "",
    "body_encoding": broker.BODY_ENCODING,
}


def kombu_layout_problems(transport_options: dict[str, Any]) -> list[str]:
    """Where kombu's Redis channel, under these transport options, would lay out or encode
    messages other than the broker adapter does (its class defaults, as the options override
    them in the channel's constructor)."""
    problems = []
    for name, ours in KOMBU_LAYOUT.items():
        theirs = transport_options.get(name, getattr(KombuRedisChannel, name))
        if (list(theirs) if name == "priority_steps" else theirs) != ours:
            problems.append(f"{name}: kombu {theirs!r}, the broker adapter {ours!r}")
    return problems


@register()
def broker_layout_check(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The send messages are written without kombu (apps.core.broker.messages_publish), in
    kombu's layout as the adapter knows it: the workers must read them where it writes them.
    And the adapter's redis-py client carries them: TLS given to kombu alone would not apply."""
    options = dict(settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    problems: list[CheckMessage] = [
        Error(
            f"kombu's Redis transport and the broker adapter disagree ({problem}): published "
            "send messages would not be where the workers read them.",
            id="deliveries.E002",
        )
        for problem in kombu_layout_problems(options)
    ]
    tls = getattr(settings, "CELERY_BROKER_USE_SSL", None)
    if tls and not str(settings.CELERY_BROKER_URL).startswith("rediss://"):
        problems.append(
            Error(
                "CELERY_BROKER_USE_SSL is set but CELERY_BROKER_URL is not rediss://: the send "
                "messages go through the broker adapter's redis-py client, which takes its TLS "
                "from the URL (rediss://...?ssl_cert_reqs=...), not from kombu's options.",
                id="deliveries.E003",
            )
        )
    return problems
