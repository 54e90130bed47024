"""Digest windows found or opened for a whole request at once: one locked SELECT for every
(recipient, template, channel, key) it joins, one INSERT for those not open (a concurrent
request's first: nothing inserted), and the locked SELECT again for the rest. A bulk request
costs the same few statements for 5 recipients or 500.

On PostgreSQL the windows are held FOR KEY SHARE until the request commits, so a close (FOR
UPDATE) waits for it and sees its items (apps/deliveries/lifecycle/digests.py). SQLite (`make
run`) has no row locks (a write takes the whole database): a plain read is as safe there.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Mapping

from django.conf import settings
from django.db import connection
from django.db.models import Q

from apps.core.errors import Unavailable
from apps.deliveries.models import Digest

# (recipient id, template id, channel, key): at most one open window each.
Target = tuple[int, int, str, str]

_OPEN_WINDOWS_SQL = """
    SELECT d.* FROM deliveries_digest d
    JOIN unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[]) AS t(r, tp, ch, k)
      ON d.recipient_id = t.r AND d.template_id = t.tp AND d.channel = t.ch AND d.key = t.k
    WHERE d.closed_at IS NULL
    ORDER BY d.recipient_id, d.channel, d.key
    FOR KEY SHARE OF d
"""
# SQLite: how many targets one OR'd query reads (its expression depth is limited).
_SQLITE_CHUNK = 100
TRIES = 3


def _target(digest: Digest) -> Target:
    return (digest.recipient_id, digest.template_id, digest.channel, digest.key)


def _open_windows(targets: list[Target]) -> list[Digest]:
    if connection.vendor == "postgresql":
        columns = [list(column) for column in zip(*targets, strict=True)]
        return list(Digest.objects.raw(_OPEN_WINDOWS_SQL, columns))
    found: list[Digest] = []
    for start in range(0, len(targets), _SQLITE_CHUNK):
        match = functools.reduce(
            operator.or_,
            (
                Q(recipient_id=r, template_id=t, channel=c, key=k)
                for r, t, c, k in targets[start : start + _SQLITE_CHUNK]
            ),
        )
        found += Digest.objects.filter(match, closed_at__isnull=True)
    return found


def digest_windows(fresh: Mapping[Target, Digest]) -> tuple[dict[Target, Digest], list[Digest]]:
    """The open window of each target (locked until the caller commits), and those of them
    opened now: `fresh` holds an unsaved window per target, inserted where none is open."""
    windows: dict[Target, Digest] = {}
    pending = sorted(fresh)
    for _ in range(TRIES):
        for digest in _open_windows(pending):
            windows[_target(digest)] = digest
        pending = [t for t in pending if t not in windows]
        if not pending:
            break
        # ON CONFLICT DO NOTHING: a concurrent request that opened one first keeps it, and the
        # next SELECT joins theirs (the insert waits for their commit on the unique index).
        Digest.objects.bulk_create([fresh[t] for t in pending], ignore_conflicts=True)
    else:  # a window closed (by the sweep) between each of our inserts and reads
        raise Unavailable(
            "Digest windows were closing while this request joined them; retry.",
            retry_after=settings.DEPENDENCY_RETRY_AFTER_SECONDS,
        )
    opened = [d for t, d in windows.items() if d.pk == fresh[t].pk]
    return windows, opened
