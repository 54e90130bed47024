"""The values an INSERT writes for model instances, as Django's insert compiler prepares them
(`pre_save` with `add`, then `get_db_prep_save`), for `create._insert_sql`.

Django's preparation walks three or four methods per field and value (about 70 per POST), most
of which return the value as it came. Here each field gets, once per model, a preparer for the
field classes and value types a new notification's rows hold (text, integers, booleans, UUIDs,
aware datetimes, JSON without an encoder of its own): the value Django's chain returns for them,
computed directly. Any other field class or value (a lazy string, a naive datetime, an
expression, a JSON encoder) goes through the field's own methods, as before.
tests/apps/deliveries/test_insert_values.py compares both, value by value and type by type.

`json_ready`: the values as the JSON document of several rows carries them (`_json_rows`):
a UUID as its text, an aware datetime in ISO 8601, a JSON field's value itself; what
`create._json_value` makes of Django's values.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.db import models
from django.utils import timezone
from psycopg.types.json import Jsonb

# (row, connection) -> the value written
Preparer = Callable[[Any, Any], Any]


class ExpressionValue(Exception):
    """A value is an expression: Django's compiler resolves it, not a preparer."""


# Field classes (exactly these: a subclass may prepare its values otherwise) whose preparation
# returns a str (or None) as it is: Field.get_prep_value, then to_python.
_TEXT = frozenset({models.CharField, models.TextField})
# IntegerField.get_db_prep_value then wraps the int in psycopg's type for the column
# (`adapt_integerfield_value`): a prepared statement's parameter types depend on it.
_INTEGER = frozenset(
    {
        models.IntegerField,
        models.SmallIntegerField,
        models.BigIntegerField,
        models.PositiveIntegerField,
        models.PositiveSmallIntegerField,
        models.PositiveBigIntegerField,
    }
)
# An auto primary key as a foreign key's target: get_prep_value's int, as it is.
_AUTO = frozenset({models.AutoField, models.BigAutoField, models.SmallAutoField})
_FOREIGN = frozenset({models.ForeignKey, models.OneToOneField})


def preparers(
    fields: Sequence[models.Field[Any, Any]], conn: Any, *, json_ready: bool = False
) -> list[Preparer]:
    """A preparer per field (made once per model and connection alias: `create._insert_shape`).
    Each takes the row and the connection and returns the value as the insert compiler
    prepares it (or, `json_ready`, as the JSON document carries it); it raises ExpressionValue
    for a value Django's compiler must resolve."""
    return [_preparer(f, conn, json_ready=json_ready) for f in fields]


def values_prepared(
    prepare: Sequence[Preparer], rows: Sequence[models.Model], conn: Any
) -> list[list[Any]]:
    """Each row's values, by `preparers`."""
    return [[p(row, conn) for p in prepare] for row in rows]


def _preparer(field: models.Field[Any, Any], conn: Any, *, json_ready: bool) -> Preparer:
    attname = field.attname
    kind = type(field)
    if kind is models.DateTimeField and (field.auto_now or field.auto_now_add):  # type: ignore[attr-defined]

        def stamped(row: Any, conn: Any) -> Any:
            value = timezone.now()  # as DateTimeField.pre_save: each field asks the clock
            setattr(row, attname, value)
            if value.utcoffset() is None:  # USE_TZ off
                return field.get_db_prep_save(value, conn)
            return value.isoformat() if json_ready else value

        return stamped
    if kind in _FOREIGN:
        target = field.target_field  # type: ignore[attr-defined]
        direct = _direct(target, conn, json_ready=json_ready, auto_int=type(target) in _AUTO)
    else:
        direct = _direct(field, conn, json_ready=json_ready)
    if direct is None:
        return lambda row, conn: _slow(field, row, conn)
    known = direct

    def prepare(row: Any, conn: Any) -> Any:
        value = getattr(row, attname)
        if value is None:
            return None
        prepared = known(value)
        return _slow(field, row, conn) if prepared is _UNKNOWN else prepared

    return prepare


_UNKNOWN = object()


def _direct(
    field: models.Field[Any, Any], conn: Any, *, json_ready: bool, auto_int: bool = False
) -> Callable[[Any], Any] | None:
    """For a value not None: what `get_db_prep_save` returns for it, or _UNKNOWN when this
    value is not one handled here; None when no value of this field is."""
    kind = type(field)
    if kind in _TEXT:
        return lambda value: value if isinstance(value, str) else _UNKNOWN
    if kind is models.BooleanField:
        return lambda value: value if type(value) is bool else _UNKNOWN
    if auto_int:
        return lambda value: value if type(value) is int else _UNKNOWN
    if kind in _INTEGER:
        if json_ready:  # the type's text is the int's
            return lambda value: value if type(value) is int else _UNKNOWN
        wrap = conn.ops.integerfield_type_map[field.get_internal_type()]
        return lambda value: wrap(value) if type(value) is int else _UNKNOWN
    if kind is models.UUIDField:
        if json_ready:
            return lambda value: str(value) if isinstance(value, uuid.UUID) else _UNKNOWN
        return lambda value: value if isinstance(value, uuid.UUID) else _UNKNOWN
    if kind is models.DateTimeField:
        return lambda value: _aware(value, json_ready)
    if kind is models.JSONField:

        def as_json(value: Any) -> Any:
            # Read each time: a field's encoder may be set after this preparer was made.
            if field.encoder is not None or type(value) not in (dict, list):  # type: ignore[attr-defined]
                return _UNKNOWN
            return value if json_ready else Jsonb(value, dumps=json.dumps)

        return as_json
    return None


def _aware(value: Any, json_ready: bool) -> Any:
    if not isinstance(value, dt.datetime) or value.utcoffset() is None:
        return _UNKNOWN  # a naive one: Django warns and makes it aware in its time zone
    return value.isoformat() if json_ready else value


def _slow(field: models.Field[Any, Any], row: Any, conn: Any) -> Any:
    """Django's own preparation of this field's value (`_json_rows` converts it further)."""
    value = field.pre_save(row, True)
    if hasattr(value, "resolve_expression"):
        raise ExpressionValue(field.name)
    return field.get_db_prep_save(value, conn)
