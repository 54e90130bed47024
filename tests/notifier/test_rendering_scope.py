"""The required-variable check: a scope-aware walk of the template's node tree (no database)."""

from __future__ import annotations

import pytest

from notifier.rendering import SERVICE_VARIABLES, render, required_variables

ORDER_BODY = "{% for item in items %}{{ item.name }} x {{ item.qty }}; {% endfor %}"


def test_for_requires_the_list_not_the_loop_variable() -> None:
    assert required_variables([ORDER_BODY]) == ["items"]


def test_nested_for_binds_each_level_and_reads_the_inner_list_from_the_outer_item() -> None:
    source = (
        "{% for order in orders %}{% for line in order.lines %}"
        "{{ line.sku }} of {{ order.id }} for {{ customer }}{% endfor %}{% endfor %}"
    )

    assert required_variables([source]) == ["customer", "orders"]


def test_for_empty_branch_is_outside_the_loop_scope() -> None:
    source = "{% for item in items %}{{ item }}{% empty %}{{ item }} {{ none_text }}{% endfor %}"

    # In `{% empty %}` no item is bound: `item` there is an input.
    assert required_variables([source]) == ["item", "items", "none_text"]


def test_unpacking_binds_every_name() -> None:
    source = "{% for key, value in pairs %}{{ key }}={{ value }}{% endfor %}"

    assert required_variables([source]) == ["pairs"]


def test_forloop_is_bound_inside_the_loop_only() -> None:
    source = "{% for x in xs %}{{ forloop.counter }}{{ forloop.parentloop }}{% endfor %}"

    assert required_variables([source]) == ["xs"]
    assert required_variables(["{{ forloop.counter }}"]) == ["forloop"]


@pytest.mark.parametrize(
    "source",
    [
        "{% with total=order.total %}{{ total }} {{ currency }}{% endwith %}",
        "{% with order.total as total %}{{ total }} {{ currency }}{% endwith %}",
    ],
)
def test_with_reads_its_right_hand_side_and_binds_its_name(source: str) -> None:
    assert required_variables([source]) == ["currency", "order"]


def test_with_name_is_local_to_its_block() -> None:
    source = "{% with total=order.total %}{{ total }}{% endwith %}{{ total }}"

    assert required_variables([source]) == ["order", "total"]


def test_if_and_elif_conditions_are_read() -> None:
    source = (
        "{% if vip %}VIP{% elif points > threshold %}{{ points }}"
        "{% elif not banned and tier == 'gold' %}gold{% else %}{{ fallback }}{% endif %}"
    )

    assert required_variables([source]) == [
        "banned",
        "fallback",
        "points",
        "threshold",
        "tier",
        "vip",
    ]


def test_if_none_true_false_are_not_inputs() -> None:
    assert required_variables(["{% if coupon is None or flag == True %}x{% endif %}"]) == [
        "coupon",
        "flag",
    ]


def test_filter_argument_variable_is_read() -> None:
    source = "{{ name|default:nickname }} {{ when|date:date_format }} {{ 'x'|add:suffix }}"

    assert required_variables([source]) == ["date_format", "name", "nickname", "suffix", "when"]


def test_firstof_and_cycle_read_their_names_and_bind_as_x_for_the_rest_of_the_block() -> None:
    source = (
        "{% firstof nickname name 'friend' as greeting %}{{ greeting }}"
        "{% for row in rows %}{% cycle odd_class even_class as css silent %}{{ css }}{% endfor %}"
    )

    assert required_variables([source]) == ["even_class", "name", "nickname", "odd_class", "rows"]


def test_a_loop_variable_shadowing_an_input_is_local_to_the_loop() -> None:
    source = "{{ name }}: {% for name in names %}{{ name }}{% endfor %}"

    assert required_variables([source]) == ["name", "names"]
    assert required_variables(["{% for name in names %}{{ name }}{% endfor %}"]) == ["names"]


def test_a_loop_over_a_variable_of_the_same_name_as_its_item() -> None:
    # The sequence is read in the outer scope, before the loop binds its name.
    assert required_variables(["{% for items in items %}{{ items }}{% endfor %}"]) == ["items"]


def test_service_variables_are_never_required() -> None:
    source = "{{ recipient.name }} {{ unsubscribe_url }} {{ preferences_url }} {{ order_id }}"

    assert required_variables([source]) == ["order_id"]
    assert {"recipient", "unsubscribe_url", "preferences_url"} <= SERVICE_VARIABLES


def test_names_from_every_source_are_merged_and_sorted() -> None:
    assert required_variables(["{{ b }}", "", "{% if a %}{{ c|default:b }}{% endif %}"]) == [
        "a",
        "b",
        "c",
    ]


def test_regroup_and_filter_block_bind_their_names() -> None:
    source = (
        "{% regroup cities by country as groups %}"
        "{% for group in groups %}{{ group.grouper }}{% endfor %}"
        "{% filter cut:sep %}{{ text }}{% endfilter %}"
    )

    assert required_variables([source]) == ["cities", "sep", "text"]


def test_loops_render_with_present_and_null_values() -> None:
    items = [{"name": "Tea", "qty": 2}, {"name": "Cake", "qty": 1}]

    rendered = render(body=ORDER_BODY, variables={"items": items}, recipient={})
    empty = render(body=ORDER_BODY, variables={"items": None}, recipient={})

    assert rendered.body == "Tea x 2; Cake x 1; "
    assert empty.body == ""
