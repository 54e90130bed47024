"""scripts.ab_example's own logic, flat and without Django or a run: what of an A/B test's
summary differs from what docs/analytics.md states."""

from __future__ import annotations

from typing import Any

from scripts.ab_example import differences


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
