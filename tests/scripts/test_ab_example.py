"""scripts.ab_example's own logic, flat and without Django or a run: the open rate's winner it
promotes, the abbreviation of the answers it prints, and what of an A/B test's summary differs
from what docs/analytics.md states."""

from __future__ import annotations

from typing import Any

import pytest

from scripts.ab_example import _winner, abbreviated, differences


def _experiment(
    *,
    sent: tuple[int, int] = (193, 207),
    opened: tuple[int, int] = (39, 66),
    clicked: tuple[int, int] = (10, 17),
    open_verdict: str | None = "b",
    click_verdict: str | None = "none",
) -> dict[str, Any]:
    """An A/B test as the analytics API's `experiment` gives it (the fields the script reads),
    by default the documented run's."""
    return {
        "labels": [
            {"label": label, "sent": s, "opened": o, "clicked": c}
            for label, s, o, c in zip("AB", sent, opened, clicked, strict=True)
        ],
        "comparisons": [
            {
                "label": "B",
                "against": "A",
                "open": {"p_value": 0.008, "verdict": open_verdict},
                "click": {"p_value": 0.23, "verdict": click_verdict},
            }
        ],
    }


def test_the_documented_run_differs_in_nothing() -> None:
    assert differences(_experiment()) == []


def test_another_split_is_named_with_the_documented_one() -> None:
    changed = differences(_experiment(sent=(200, 200)))

    assert changed == ["sent: {'A': 200, 'B': 200} (docs/analytics.md: {'A': 193, 'B': 207})"]


def test_a_verdict_that_names_no_winner_is_named_and_so_is_the_promotion_it_skips() -> None:
    changed = differences(_experiment(opened=(39, 50), open_verdict="none"))

    assert changed == [
        "opened: {'A': 39, 'B': 50} (docs/analytics.md: {'A': 39, 'B': 66})",
        "open verdict: none (docs/analytics.md: b)",
        "open rate's winner (promoted): None (docs/analytics.md: B)",
    ]


def test_no_verdict_yet_and_a_click_verdict_are_named() -> None:
    changed = differences(_experiment(open_verdict=None, click_verdict="b"))

    assert changed == [
        "open verdict: None (docs/analytics.md: b)",
        "click verdict: b (docs/analytics.md: none)",
        "open rate's winner (promoted): None (docs/analytics.md: B)",
    ]


def test_a_summary_without_labels_or_comparisons_differs_in_everything() -> None:
    changed = differences({"labels": [], "comparisons": []})

    assert len(changed) == 6
    assert changed[0] == "sent: {} (docs/analytics.md: {'A': 193, 'B': 207})"


@pytest.mark.parametrize(("verdict", "winner"), [("a", "A"), ("b", "B"), ("none", ""), (None, "")])
def test_the_winner_is_the_label_the_open_verdict_names(verdict: str | None, winner: str) -> None:
    experiment = _experiment(open_verdict=verdict, click_verdict="b")

    assert _winner(experiment) == winner


def test_the_winner_of_a_challenger_other_than_b_is_its_label() -> None:
    experiment = _experiment(open_verdict="b")
    experiment["comparisons"][0] |= {"label": "control-2", "against": "control"}

    assert _winner(experiment) == "control-2"
    assert _winner(experiment | {"comparisons": []}) == ""


def test_abbreviated_keeps_the_first_entry_of_each_list_and_counts_the_rest() -> None:
    answer = {
        "id": "n-1",
        "deliveries": [{"id": "d-1", "timeline": ["sent", "delivered", "opened"]}, {"id": "d-2"}],
        "tags": ["one"],
        "empty": [],
        "count": 2,
    }

    assert abbreviated(answer) == {
        "id": "n-1",
        "deliveries": [{"id": "d-1", "timeline": ["sent", "… 2 more"]}, "… 1 more"],
        "tags": ["one"],
        "empty": [],
        "count": 2,
    }


def test_abbreviated_keeps_as_many_entries_as_asked() -> None:
    assert abbreviated([[1, 2, 3], [4, 5], [6]], items=2) == [
        [1, 2, "… 1 more"],
        [4, 5],
        "… 1 more",
    ]
    assert abbreviated("a string, not a list", items=0) == "a string, not a list"
