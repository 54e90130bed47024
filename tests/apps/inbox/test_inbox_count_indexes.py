"""The badge's counts (unread, unseen; archived messages excluded) have partial indexes of
their own (migration 0006), as PostgreSQL's planner sees them."""

from __future__ import annotations

import pytest
from django.db import connection

from apps.inbox.models import InboxMessage
from tests.factories import RecipientFactory

pytestmark = [pytest.mark.django_db]


@pytest.mark.parametrize(
    ("column", "index"),
    [("read_at", "inbox_recipient_unread_active"), ("seen_at", "inbox_recipient_unseen_active")],
)
def test_each_count_can_use_its_partial_index(column: str, index: str) -> None:
    recipient = RecipientFactory()
    query = InboxMessage.objects.filter(
        recipient=recipient, archived_at__isnull=True, **{f"{column}__isnull": True}
    )
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table: ask for an index
        # The older (recipient, read_at) / unseen indexes serve the same query on a tiny table
        # and the planner picks either: set them aside inside this test's transaction (DDL is
        # transactional in PostgreSQL) to ask whether the partial index itself is usable.
        cursor.execute("DROP INDEX inbox_recipient_unread, inbox_recipient_unseen")
        plan = query.order_by().explain()  # a count has no order

    assert index in plan, plan
