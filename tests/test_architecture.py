"""The source keeps its owners: these read the code (with `ast`, not a regex over text).

- Only the delivery lifecycle (apps/deliveries/lifecycle/) writes a delivery's `status` or its
  event rows.
- Only the channel module (notifier/channels.py) and the provider adapters (notifier/providers/)
  compare against a channel by name.
- No module of apps/ or notifier/ passes 400 lines.
"""

from __future__ import annotations

import ast
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


def status_writes(tree: ast.AST) -> list[int]:
    """Lines that assign `.status`, pass `status=` to an update or a delivery/event row, name
    `status` among the fields to save or bulk-update, or hold SQL that sets it."""
    lines: list[int] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Attribute) and t.attr == "status" for t in targets):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call):
            called = _name(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            if called in STATUS_WRITERS and "status" in keywords:
                lines.append(node.lineno)
            if called == "bulk_update" and any(
                "status" in _strings(a) for a in [*node.args, *keywords.values()]
            ):
                lines.append(node.lineno)
            if "update_fields" in keywords and "status" in _strings(keywords["update_fields"]):
                lines.append(node.lineno)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "set status" in node.value.lower()
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
        ("Response(body, status=201)\nrows.filter(status__in=X)\nx = d.status", []),
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
