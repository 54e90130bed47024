"""Which variables a template reads from its caller: a walk of the node tree with scope.

Names bound inside the template are local to their block: the loop variables of `{% for %}`
(and `forloop`), the names of `{% with %}`, and what `{% cycle ... as x %}`, `{% firstof ...
as x %}`, `{% regroup ... as x %}` (and other `as x` tags) bind for the rest of the block.
Everything else read by `{{ }}`, `{% for ... in X %}`, `{% if %}`/`{% elif %}`, `{% with %}`
right-hand sides, `{% firstof %}`, `{% cycle %}` or a filter argument is an input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

from django.template import Node, NodeList
from django.template.base import FilterExpression, Variable
from django.template.defaulttags import FilterNode, ForNode, IfNode, RegroupNode, WithNode
from django.template.loader_tags import BlockNode

# Every Django context holds these (BaseContext's builtins): never inputs.
CONTEXT_BUILTINS = frozenset({"True", "False", "None"})
# Attributes by which a tag binds a name for the rest of its block (`... as x`).
BINDING_ATTRIBUTES = ("asvar", "variable_name", "target_var")


def child_nodelists(node: Node) -> list[NodeList]:
    """The node lists nested in `node` (an `{% if %}` keeps one per branch)."""
    if isinstance(node, IfNode):
        return [nodelist for _, nodelist in node.conditions_nodelists]
    lists = (getattr(node, attr, None) for attr in node.child_nodelists)
    return [nodelist for nodelist in lists if nodelist]


def required_names(nodelist: Iterable[Node]) -> set[str]:
    """Top-level names the nodes read that the template does not bind itself."""
    needed: set[str] = set()
    _walk(nodelist, frozenset(CONTEXT_BUILTINS), needed)
    return needed


def _walk(nodelist: Iterable[Node], outer: frozenset[str], needed: set[str]) -> None:
    bound = set(outer)  # grows as `... as x` tags bind names for their later siblings
    for node in nodelist:
        scope = frozenset(bound)
        if isinstance(node, ForNode):
            _read(node.sequence, scope, needed)
            # (django-stubs type both lists as `list[str] | NodeList`)
            _walk(cast(NodeList, node.nodelist_loop), scope | {*node.loopvars, "forloop"}, needed)
            _walk(cast(NodeList, node.nodelist_empty), scope, needed)
        elif isinstance(node, WithNode):
            for expression in node.extra_context.values():
                _read(expression, scope, needed)
            _walk(node.nodelist, scope | set(node.extra_context), needed)
        elif isinstance(node, IfNode):
            for condition, branch in node.conditions_nodelists:
                _read_condition(condition, scope, needed)
                _walk(branch, scope, needed)
        elif isinstance(node, RegroupNode):
            _read(node.target, scope, needed)
            _read(node.expression, scope | {node.var_name}, needed)
            bound.add(node.var_name)
        elif isinstance(node, FilterNode):  # `{% filter f %}` applies f to a name `var`
            _read(node.filter_expr, scope | {"var"}, needed)
            _walk(node.nodelist, scope, needed)
        elif isinstance(node, BlockNode):
            _walk(node.nodelist, scope | {"block"}, needed)
        else:
            for expression in _expressions(vars(node).values()):
                _read(expression, scope, needed)
            for branch in child_nodelists(node):
                _walk(branch, scope, needed)
            for attr in BINDING_ATTRIBUTES:
                name = getattr(node, attr, None)
                if isinstance(name, str) and name:
                    bound.add(name)


def _expressions(values: Iterable[Any]) -> Iterator[FilterExpression]:
    """The filter expressions among a node's attributes (also inside lists and dicts)."""
    for value in values:
        if isinstance(value, FilterExpression):
            yield value
        elif isinstance(value, list | tuple) and not isinstance(value, NodeList):
            yield from _expressions(value)
        elif isinstance(value, dict):
            yield from _expressions(value.values())


def _name(variable: Any) -> str | None:
    if isinstance(variable, Variable) and variable.lookups:
        return str(variable.lookups[0])
    return None  # a literal


def _read(expression: Any, scope: frozenset[str], needed: set[str]) -> None:
    if not isinstance(expression, FilterExpression):
        return
    names = [_name(expression.var)]
    for _func, args in expression.filters:
        names.extend(_name(arg) for is_lookup, arg in args if is_lookup)
    needed.update(name for name in names if name is not None and name not in scope)


def _read_condition(condition: Any, scope: frozenset[str], needed: set[str]) -> None:
    """An `{% if %}` condition: literals hold a filter expression, operators their operands."""
    if condition is None:  # `{% else %}`
        return
    _read(getattr(condition, "value", None), scope, needed)
    for operand in (getattr(condition, "first", None), getattr(condition, "second", None)):
        if operand is not None:
            _read_condition(operand, scope, needed)
