"""The source keeps its owners: these read the code (with `ast`, not a regex over text).

- Only the delivery lifecycle (apps/deliveries/lifecycle/) writes a delivery's `status` or its
  event rows.
- Only the channel module (notifier/channels.py) and the provider adapters (notifier/providers/)
  compare against a channel by name.
- No module of apps/ or notifier/ passes 400 lines.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIFECYCLE = ROOT / "apps" / "deliveries" / "lifecycle"
CHANNEL_OWNERS = (ROOT / "notifier" / "channels.py", ROOT / "notifier" / "providers")
CHANNEL_NAMES = {"email", "sms", "push", "inapp"}
MAX_LINES = 400
# Constructors and writes that take `status=` for a delivery or its event row.
STATUS_WRITERS = {
    "update",
    "create",
    "bulk_create",
    "get_or_create",
    "update_or_create",
    "Delivery",
    "DeliveryEvent",
}


def _sources(*tops: str) -> Iterator[Path]:
    for top in tops:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


def _inside(path: Path, owner: Path) -> bool:
    return path == owner or owner in path.parents


def _name(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return ""


def _strings(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return [s for element in node.elts for s in _strings(element)]
    return []


# SQL that sets the column: `SET status = ...` or `SET reason = ..., status = ...`.
SQL_STATUS_SET = re.compile(r"\bset\b[^;]*?(?<![\w.])status\s*=", re.IGNORECASE | re.DOTALL)


def _assignments(tree: ast.AST) -> dict[str, list[ast.expr]]:
    """What each plain name is assigned anywhere in the module (a field list, a dict of values)."""
    found: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found.setdefault(target.id, []).append(node.value)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            found.setdefault(node.target.id, []).append(node.value)
    return found


def _field_names(
    node: ast.expr, assigned: dict[str, list[ast.expr]], seen: frozenset[str] = frozenset()
) -> set[str]:
    """The column names a field list or a dict of values holds, following names assigned in the
    module, `+` of lists and `*spread` elements: `["status"]`, `{"status": x}`, `dict(status=x)`."""
    if isinstance(node, ast.Name):
        if node.id in seen:
            return set()
        return {
            name
            for value in assigned.get(node.id, [])
            for name in _field_names(value, assigned, seen | {node.id})
        }
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Starred):
        return _field_names(node.value, assigned, seen)
    if isinstance(node, ast.BinOp):
        return _field_names(node.left, assigned, seen) | _field_names(node.right, assigned, seen)
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return {name for element in node.elts for name in _field_names(element, assigned, seen)}
    if isinstance(node, ast.Dict):
        return {
            name
            for key in node.keys
            if key is not None
            for name in _field_names(key, assigned, seen)
        } | {
            name
            for key, value in zip(node.keys, node.values, strict=True)
            if key is None  # {**other}
            for name in _field_names(value, assigned, seen)
        }
    if isinstance(node, ast.Call) and _name(node.func) == "dict":
        return {k.arg for k in node.keywords if k.arg} | {
            name
            for k in node.keywords
            if k.arg is None
            for name in _field_names(k.value, assigned, seen)
        }
    return set()


def _sql_text(node: ast.expr) -> str:
    """A string literal's text; an f-string's literal parts around its placeholders."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            _sql_text(part) if isinstance(part, ast.Constant) else "?" for part in node.values
        )
    return ""


def status_writes(tree: ast.AST) -> list[int]:
    """Lines that assign `.status` (or `setattr` it), pass `status=` (or `**` values holding it)
    to an update or a delivery/event row, name `status` among the fields to save or
    bulk-update, or hold SQL that sets it."""
    assigned = _assignments(tree)
    lines: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == "status" for t in targets):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            called = _name(node.func)
            keywords = {k.arg: k.value for k in node.keywords if k.arg is not None}
            spread = [k.value for k in node.keywords if k.arg is None]  # f(**values)
            if called in STATUS_WRITERS and (
                "status" in keywords or any("status" in _field_names(v, assigned) for v in spread)
            ):
                lines.append(node.lineno)
            if called == "bulk_update" and any(
                "status" in _field_names(a, assigned) for a in [*node.args, *keywords.values()]
            ):
                lines.append(node.lineno)
            if "update_fields" in keywords and "status" in _field_names(
                keywords["update_fields"], assigned
            ):
                lines.append(node.lineno)
            if (
                called == "setattr"
                and len(node.args) >= 2
                and "status" in _field_names(node.args[1], assigned)
            ):
                lines.append(node.lineno)
        elif isinstance(node, ast.Constant | ast.JoinedStr) and SQL_STATUS_SET.search(
            _sql_text(node)
        ):
            lines.append(node.lineno)
    return sorted(set(lines))


def _is_channel(node: ast.expr) -> bool:
    if isinstance(node, ast.Attribute) and _name(node.value) == "Channel":
        return True
    names = _strings(node)
    return bool(names) and all(s in CHANNEL_NAMES for s in names)


def channel_comparisons(tree: ast.AST) -> list[int]:
    """Lines comparing with a channel by name (`== "email"`, `Channel.PUSH ==`, `"sms" in`)."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and any(_is_channel(side) for side in [node.left, *node.comparators])
    ]


def test_only_the_lifecycle_writes_delivery_status() -> None:
    found = {
        str(path.relative_to(ROOT)): lines
        for path in _sources("apps")
        if not _inside(path, LIFECYCLE)
        and (lines := status_writes(ast.parse(path.read_text(), str(path))))
    }
    assert found == {}


def test_only_the_channel_module_and_providers_compare_channels() -> None:
    found = {
        str(path.relative_to(ROOT)): lines
        for path in _sources("apps", "notifier")
        if not any(_inside(path, owner) for owner in CHANNEL_OWNERS)
        and (lines := channel_comparisons(ast.parse(path.read_text(), str(path))))
    }
    assert found == {}


def test_no_module_over_400_lines() -> None:
    found = {
        str(path.relative_to(ROOT)): n
        for path in _sources("apps", "notifier")
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert found == {}


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("d.status = 'sent'", [1]),
        ("Delivery.objects.filter(pk=1).update(\n    reason='', status=S.SENT)", [1]),
        ("Delivery.objects.bulk_update(rows, ['status', 'reason'])", [1]),
        ("d.save(update_fields=['status'])", [1]),
        ("DeliveryEvent(delivery=d, status=S.READ)", [1]),
        ("sql = 'UPDATE t SET status = %s'", [1]),
        # main's claim and _settle: the fields travel in a dict, or in a list named elsewhere
        ("rows.update(**{'status': S.SENDING, 'attempts': F('attempts') + 1})", [1]),
        ("taking = {'status': S.SENDING}\nrows.update(**taking)", [2]),
        ("taking = dict(status=S.SENDING)\nrows.update(**taking)", [2]),
        ("fields = ['status', 'reason']\nd.save(update_fields=fields)", [2]),
        ("d.save(update_fields=['reason'] + ['status'])", [1]),
        ("fields = ('status',)\nDelivery.objects.bulk_update(rows, fields)", [2]),
        ("setattr(d, 'status', S.SENT)", [1]),
        ("sql = f'UPDATE {t} SET reason = %s, status = %s WHERE id = %s'", [1]),
        ("Response(body, status=201)\nrows.filter(status__in=X)\nx = d.status", []),
        ("rows.filter(**{'status__in': X}).update(**{'reason': ''})", []),
        ("rows.update(**{'status_code': 1})\ngetattr(d, 'status')", []),
    ],
)
def test_status_writes_are_seen(source: str, lines: list[int]) -> None:
    assert status_writes(ast.parse(source)) == lines


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        ("if channel == 'email': pass", [1]),
        ("ok = Channel.PUSH != d.channel", [1]),
        ("ok = 'push' in channels", [1]),
        ("ok = channel in ('email', 'sms')", [1]),
        ("ok = kind == 'bounce'\nrows.filter(channel=Channel.SMS)", []),
    ],
)
def test_channel_comparisons_are_seen(source: str, lines: list[int]) -> None:
    assert channel_comparisons(ast.parse(source)) == lines
