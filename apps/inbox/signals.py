"""What the inbox tells the apps above it (it imports none of them: deliveries listens)."""

from __future__ import annotations

from django.dispatch import Signal

# Sent inside the transaction that marked messages read, with `delivery_ids`: the deliveries
# those messages came from. apps.deliveries moves them to `read` (its AppConfig.ready()).
messages_read = Signal()
# Sent inside the transaction that marked messages seen (the bell opened), with `delivery_ids`:
# apps.deliveries stands down the escalation steps waiting on `seen`.
messages_seen = Signal()
