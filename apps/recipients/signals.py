"""What the recipients app tells the apps above it (it imports none of them: they listen)."""

from __future__ import annotations

from django.dispatch import Signal

from apps.core.signals import GuardedSignal

# Sent by recipient_erase inside its transaction, with `recipient`, `alias` (its new external
# id) and `personal` (the PersonalData to strip). apps.deliveries erases what the apps above
# this one keep about the recipient (its inbox, its delivery history): apps/deliveries/erasure.
recipient_erasing = Signal()

# Sent when a recipient is shown by the API, with `recipient`; each receiver returns a dict of
# fields to add to the representation (apps.topics adds the keys of the topics it follows).
recipient_describing = Signal()

# Sent inside the transaction that records a RecipientEvent, with `event`: the hook the outbound
# webhooks (`recipient.unsubscribed`, `recipient.preferences_updated`) write their outbox on.
# Guarded (apps.core.signals): a receiver that fails never fails the unsubscribe.
recipient_event_recorded = GuardedSignal()
