"""A queryset compiled to SQL once per process, thread and shape, then run with new values.

Django builds and compiles a queryset on every evaluation: for a small query on a hot path (the
API's recipients read) that is most of its CPU, the database's work being a fraction of it.
`CompiledQuery` builds the queryset once with a sentinel for each value that changes between
calls, compiles it, remembers where each sentinel's parameter sits, and from then on executes
the same SQL with the call's values, turning rows into instances as Django's own iterable does
(`select_related` objects and annotations included). A value must therefore reach the SQL as
one parameter, unchanged: a model's primary key (not the instance), a list given to PostgreSQL
as one array (`= ANY(%s)`), never `__in` with a list (one parameter per element). Anything else
about the queryset (the channels it reads, a prefetch) is part of its shape: the caller's key.

Every other parameter is frozen at the first compile and reused by every later call. A value
that changes with time (a `timezone.now()` cutoff, a date) would silently stay the first call's:
`_Plan` refuses date, time and timedelta parameters (ValueError). Pass such a value as one of
the call's values, or keep it out of the SQL.

The statement goes through a Django cursor (query logging, `CaptureQueriesContext`,
django-prometheus) with server-side binding (`apps/core/bound.py`): its values travel apart
from the SQL, and on PostgreSQL it is prepared on its connection after a few runs, so the same
text is parsed and planned once per connection. Compiled per thread: a compiler holds its
thread's connection.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any, Generic, TypeVar

from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]
from django.db.models.sql.compiler import SQLCompiler

from apps.core.bound import bound_rows

M = TypeVar("M", bound=Model)
# Parameters that are usually "now" or derived from it: refused as constants of a plan.
_VOLATILE = (dt.date, dt.time, dt.timedelta)  # datetime is a date


class _Plan:
    def __init__(self, queryset: QuerySet[Any], sentinels: Sequence[Any]) -> None:
        compiler: SQLCompiler = queryset.query.get_compiler(using=queryset.db)
        sql, params = compiler.as_sql()
        slots: list[int | None] = []
        for param in params:
            found = [i for i, s in enumerate(sentinels) if param is s or param == s]
            if len(found) > 1:
                raise ValueError(f"parameter {param!r} matches several sentinels")
            slots.append(found[0] if found else None)
        frozen = [p for p, slot in zip(params, slots, strict=True) if slot is None]
        volatile = [p for p in frozen if isinstance(p, _VOLATILE)]
        if volatile:
            raise ValueError(
                f"parameters {volatile!r} would be frozen at the first compile: a date or "
                "time must be one of the call's values, not part of the query's shape"
            )
        missing = set(range(len(sentinels))) - {s for s in slots if s is not None}
        if missing:
            raise ValueError(
                f"values {sorted(missing)} did not reach the SQL as parameters of their own"
            )
        self.sql, self.params, self.slots = sql, list(params), slots
        self.compiler, self.db = compiler, queryset.db
        klass_info, select = compiler.klass_info, compiler.select
        assert klass_info is not None  # noqa: S101 - a model query always has one
        fields = klass_info["select_fields"]
        self.model: type[Model] = klass_info["model"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.init_list = [f[0].target.attname for f in select[self.start : self.end]]
        self.populators = get_related_populators(klass_info, select, queryset.db)
        self.annotations = dict(compiler.annotation_col_map or {})
        # Django's row converters (JSON, time zones), found once as `results_iter` would per call.
        selected = [s[0] for s in select[0 : compiler.col_count]]
        if compiler.has_composite_fields(selected):
            raise ValueError("composite fields are not supported")
        self.converters = compiler.get_converters(selected)

    def run(self, values: Sequence[Any]) -> Iterator[Model]:
        params = [
            const if slot is None else values[slot]
            for const, slot in zip(self.params, self.slots, strict=True)
        ]
        rows = bound_rows(self.sql, params, self.db)  # a queryset's SELECT: a read
        converted = (
            self.compiler.apply_converters(rows, self.converters) if self.converters else rows
        )
        for row in converted:
            obj = self.model.from_db(self.db, self.init_list, row[self.start : self.end])
            for populator in self.populators:
                populator.populate(row, obj)
            for name, position in self.annotations.items():
                setattr(obj, name, row[position])
            yield obj


class CompiledQuery(Generic[M]):
    """`build(key, *values)` returns the queryset for those values; `run(key, *values)`
    evaluates it, compiled once per `key`, which must name everything else the queryset depends
    on. `kinds` are the values' types (int, str, or list: one PostgreSQL array parameter)."""

    def __init__(self, build: Callable[..., QuerySet[M]], *, kinds: Sequence[type]) -> None:
        self.build = build
        self.sentinels = [_sentinel_for(i, kind) for i, kind in enumerate(kinds)]
        self._local = threading.local()

    def _plan(self, key: Hashable) -> _Plan:
        plans: dict[Hashable, _Plan] | None = getattr(self._local, "plans", None)
        if plans is None:
            plans = self._local.plans = {}
        found = plans.get(key)
        if found is None:
            found = plans[key] = _Plan(self.build(key, *self.sentinels), self.sentinels)
        return found

    def forget(self) -> None:
        """Drop this thread's plans (tests that count compilations)."""
        self._local.plans = {}

    def run(self, key: Hashable, *values: Any) -> list[M]:
        if len(values) != len(self.sentinels):
            raise TypeError(f"expected {len(self.sentinels)} values, got {len(values)}")
        return list(self._plan(key).run(values))  # type: ignore[arg-type]


def _sentinel_for(index: int, kind: type) -> Any:
    """An unlikely value of its type: an int no primary key reaches, a str with a NUL
    (PostgreSQL text cannot hold one), a list of such a str."""
    if kind is int:
        return -(10**15) - index
    if kind is str:
        return f"\x00compiled-{index}"
    if kind is list:
        return [f"\x00compiled-{index}"]
    raise TypeError(f"no sentinel for {kind.__name__} values")
