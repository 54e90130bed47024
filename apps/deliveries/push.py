"""Push fan-out: one push delivery goes to every ACTIVE device of its recipient.

How the per-device results roll up into the one delivery status:
- every device that can take it has it: the delivery is `sent` (its provider_message_id lists
  the accepted message ids).
- some devices accepted and some failed transiently: a TransientFailure for the delivery (the
  longest Retry-After wins), and the devices that already have it are remembered
  (`Delivery.push_accepted`), so the retry goes to the remaining devices only: nobody gets it
  twice, and a flaky device is not given up on. Should the retries run out, the dead letter
  says how many devices had it.
- no device accepted and at least one failed transiently: a TransientFailure.
- every remaining device failed permanently: `sent` if earlier devices have it, else a
  PermanentFailure (dead letter, no retry).
Whatever the outcome, a token the provider calls dead (unregistered, another sender's,
malformed) deactivates its device at once. When no active device remains the reason says so.
"""

from __future__ import annotations

import dataclasses
import logging

from apps.deliveries.models import Delivery
from apps.recipients.models import Device
from apps.recipients.selectors import recipient_active_devices, recipient_has_address
from apps.recipients.services import device_deactivate
from notifier.errors import DeliveryFailure, PermanentFailure, TransientFailure
from notifier.masking import mask_address
from notifier.providers.base import OutboundMessage, Provider, SendResult

logger = logging.getLogger(__name__)

NO_ACTIVE_DEVICE = "no active device"


# What each device's send came to: the provider's result or its refusal.
DeviceResults = list[tuple[Device, SendResult | DeliveryFailure]]


def push_targets(*, delivery: Delivery) -> list[Device]:
    """The recipient's active devices that do not have this delivery yet (the database, so the
    batch's own thread: provider calls run elsewhere, see apps/deliveries/inflight.py)."""
    done = delivery.push_accepted or {}
    devices = [
        d for d in recipient_active_devices(recipient=delivery.recipient) if d.token not in done
    ]
    if not devices and not done:
        raise PermanentFailure(NO_ACTIVE_DEVICE)
    return devices


def push_send(
    *, provider: Provider, message: OutboundMessage, devices: list[Device]
) -> DeviceResults:
    """Send `message` to each device, one call each; no database (a provider thread runs it)."""
    results: DeviceResults = []
    for device in devices:
        one = dataclasses.replace(message, to=device.token, platform=device.platform)
        try:
            results.append((device, provider.send(one)))
        except DeliveryFailure as exc:
            results.append((device, exc))
    return results


def push_settle(
    *, delivery: Delivery, message: OutboundMessage, results: DeviceResults
) -> SendResult:
    """Roll the devices' results up into the delivery's (module docstring); deactivate the
    devices whose token the provider called dead. Raises the delivery's failure."""
    done: dict[str, str] = dict(delivery.push_accepted or {})
    accepted: dict[str, SendResult] = {}
    failures: list[DeliveryFailure] = []
    deactivated = 0
    for device, result in results:
        if isinstance(result, SendResult):
            accepted[device.token] = result
            continue
        failures.append(result)
        if isinstance(result, PermanentFailure) and result.deactivate_token:
            deactivated += int(
                device_deactivate(
                    client_id=device.client_id, token=device.token, reason=result.reason
                )
            )
            logger.info(
                "device deactivated",
                extra={"delivery_id": message.delivery_id, "token": mask_address(device.token)},
            )
    done.update({token: r.provider_message_id for token, r in accepted.items()})
    # Kept on the row by the outcome's own UPDATE (sending.py) when the delivery is sent; only
    # a partial send, which a retry follows, needs it written now.
    delivery.push_accepted = done
    transient = [f for f in failures if isinstance(f, TransientFailure)]
    if done and not transient:
        if failures:
            logger.warning(
                "push sent to some devices; the others refused it for good",
                extra={
                    "delivery_id": message.delivery_id,
                    "accepted": len(done),
                    "failed": [f.reason for f in failures],
                },
            )
        first = next(iter(accepted.values()), None)
        return SendResult(
            provider_message_id=",".join(done.values()),
            status_code=first.status_code if first else 200,
        )
    if done:  # some devices have it, some failed transiently: retry those only
        Delivery.objects.filter(pk=delivery.pk).update(push_accepted=done)
        waits = [f.retry_after for f in transient if f.retry_after is not None]
        failure = _rolled_up_failure(failures, none_left=False)
        raise TransientFailure(
            "push partly sent",
            retry_after=max(waits) if waits else None,
            status_code=failure.status_code,
            detail=f"{len(done)} of {len(done) + len(transient)} devices have it; {failure.detail}",
        )
    none_left = bool(deactivated) and not recipient_has_address(
        recipient=delivery.recipient, channel=delivery.channel
    )
    raise _rolled_up_failure(failures, none_left=none_left)


def _rolled_up_failure(failures: list[DeliveryFailure], *, none_left: bool) -> DeliveryFailure:
    transient = [f for f in failures if isinstance(f, TransientFailure)]
    if transient:
        waits = [f.retry_after for f in transient if f.retry_after is not None]
        return TransientFailure(
            transient[0].reason,
            retry_after=max(waits) if waits else None,
            status_code=transient[0].status_code,
            detail=_details(failures),
        )
    first = failures[0]
    reason = f"{first.reason}; {NO_ACTIVE_DEVICE} left" if none_left else first.reason
    return PermanentFailure(reason, status_code=first.status_code, detail=_details(failures))


def _details(failures: list[DeliveryFailure]) -> str:
    return "; ".join(f"{f.reason}: {f.detail}" if f.detail else f.reason for f in failures)[:500]
