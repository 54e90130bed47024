"""JSON bodies that PostgreSQL can store and Python can parse, or a 400 naming what is wrong.

Python's json module accepts what the API must not: `NaN`/`Infinity` and overflowing numbers
(`1e999` is `inf`, which jsonb refuses), lone surrogates (`"\\ud800"`, which UTF-8 cannot encode),
NUL characters (PostgreSQL text cannot hold them) and duplicate keys (the last one silently
wins). Its decoder also recurses once per nesting level, so about a thousand levels raise
`RecursionError`. One parser for every endpoint checks all of this before a serializer sees
the data: the nesting depth by scanning the text (no recursion), the rest while decoding.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError, ValidationError
from rest_framework.parsers import JSONParser

# Strings (an unterminated one runs to the end of the text) and every run of characters that
# is not a bracket: what is left of a JSON text once they are removed is its bracket skeleton.
_NOT_BRACKETS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?|[^\[\]{}"]+', re.DOTALL)
_PARENS = str.maketrans("[{]}", "(())")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Errors past this many are not listed: one answer names enough to fix the request.
MAX_REPORTED = 10


class JSONTooDeep(ParseError):
    default_detail = "JSON nested too deeply."


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether arrays/objects in `text` nest deeper than `limit`, without parsing it.

    Linear string operations only (no per-character Python loop, no recursion): each pass
    removes the innermost empty pairs of the skeleton, so a balanced skeleton needs exactly
    as many passes as it is deep. Brackets left unpaired (invalid JSON, but the decoder
    would still recurse into them) count as one level each.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    skeleton = _NOT_BRACKETS.sub("", text).translate(_PARENS)
    if "(" * (limit + 1) in skeleton:  # the usual attack, answered without the passes
        return True
    for passes in range(limit + 1):
        shorter = skeleton.replace("()", "")
        if shorter == skeleton:
            return skeleton.count("(") + passes > limit
        skeleton = shorter
    return True


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return value


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"Number out of range: {text[:40]}")
    return value


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON.")


def _printable(key: str) -> str:
    """A path element that can itself be rendered in the error's JSON."""
    return _UNSTORABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", key)


def _unstorable(value: Any) -> Iterator[tuple[list[str], str]]:
    """(path, problem) for every string (key or value) PostgreSQL cannot store, depth first."""
    stack: list[tuple[list[str], Any]] = [([], value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            found = _UNSTORABLE.search(item)
            if found:
                yield path, _problem(found.group())
        elif isinstance(item, dict):
            for key, child in reversed(item.items()):
                found = _UNSTORABLE.search(key)
                if found:
                    yield [*path, _printable(key)], f"Key: {_problem(found.group())}"
                stack.append(([*path, key], child))
        elif isinstance(item, list):
            stack.extend(([*path, str(i)], child) for i, child in reversed(list(enumerate(item))))


def _problem(char: str) -> str:
    if char == "\x00":
        return "Must not contain NUL characters (\\u0000)."
    return f"Must not contain unpaired surrogate characters (\\u{ord(char):04x})."


def _as_fields(errors: list[tuple[list[str], str]]) -> dict[str, Any]:
    """Paths as DRF nests field errors: {"variables": {"a": ["..."]}}; the body itself as
    `non_field_errors`."""
    fields: dict[str, Any] = {}
    for path, message in errors:
        if not path:
            fields.setdefault("non_field_errors", []).append(message)
            continue
        node = fields
        for part in path[:-1]:
            part = _printable(part)
            child = node.setdefault(part, {})
            if not isinstance(child, dict):  # an error already stops at this level
                break
            node = child
        else:
            leaf = node.setdefault(_printable(path[-1]), [])
            if isinstance(leaf, list):
                leaf.append(message)
    return fields


def json_loads_strict(text: str, *, max_depth: int) -> Any:
    """Decode `text` as JSON the database can store; raise ParseError or ValidationError."""
    if json_depth_exceeds(text, max_depth):
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels.")
    try:
        data = json.loads(
            text, object_pairs_hook=_object, parse_float=_finite, parse_constant=_constant
        )
    except _DuplicateKey as exc:
        key = _printable(exc.key)[:100]
        raise ParseError(f"Duplicate key in a JSON object: {key!r}.") from None
    except RecursionError:  # unreachable after the depth scan; never a 500 if it were not
        raise JSONTooDeep(f"JSON nested deeper than {max_depth} levels.") from None
    except ValueError as exc:
        raise ParseError(f"JSON parse error - {exc}") from None
    errors = []
    for error in _unstorable(data):
        errors.append(error)
        if len(errors) == MAX_REPORTED:
            break
    if errors:
        raise ValidationError(_as_fields(errors))
    return data


class StrictJSONParser(JSONParser):
    """DRF's JSON parser with the checks of `json_loads_strict` (limit: JSON_MAX_DEPTH)."""

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        encoding = (parser_context or {}).get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        return json_loads_strict(text, max_depth=settings.JSON_MAX_DEPTH)
