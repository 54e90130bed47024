"""scripts.ab_example's own logic, flat and without Django or a run: the open rate's winner it
promotes, the abbreviation of the answers it prints, what of an A/B test's summary differs from
what docs/analytics.md states, and how it gives up (a delivery that will never be sent, a fold
that does not catch up) against canned answers of the API."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest

from scripts import ab_example
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


class FakeApi:
    """The service as scripts.ab_example's `call` reaches it: canned answers by method and path,
    each call recorded."""

    def __init__(self, answers: dict[tuple[str, str], Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, str]] = []

    def __call__(self, method: str, url: str, body: Any = None, **_: Any) -> Any:
        path = url.removeprefix("http://api")
        self.calls.append((method, path))
        return self.answers[(method, path.partition("?")[0])]


def _delivery(n: int, status: str, reason: str = "") -> dict[str, Any]:
    return {"id": f"d-{n}", "recipient": f"user-{n:03d}", "status": status, "reason": reason}


def test_send_stops_at_once_naming_a_failed_delivery(monkeypatch: pytest.MonkeyPatch) -> None:
    deliveries = [
        _delivery(1, "sent"),
        _delivery(2, "dead", "sendgrid: 401 unauthorized"),
        _delivery(3, "failed"),
        _delivery(4, "queued"),
    ]
    api = FakeApi(
        {
            ("POST", "/api/v1/notifications"): {"id": "n-1", "status": "accepted"},
            ("GET", "/api/v1/notifications/n-1"): {"id": "n-1", "deliveries": deliveries},
        }
    )
    monkeypatch.setattr(ab_example, "call", api)

    with pytest.raises(SystemExit) as stopped:
        ab_example.send("http://api", "key", [f"user-{n:03d}" for n in range(1, 5)])

    assert stopped.value.code == (
        "ab_example: delivery d-2 to user-002 is dead (and 1 more): sendgrid: 401 unauthorized"
    )
    assert api.calls == [("POST", "/api/v1/notifications"), ("GET", "/api/v1/notifications/n-1")]


def test_a_fold_that_never_catches_up_is_reported_with_the_last_counts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    partly = _experiment(sent=(193, 207), opened=(39, 60), clicked=(10, 17))
    for arm in partly["labels"]:
        arm["delivered"] = arm["sent"]
    api = FakeApi({("GET", "/api/v1/analytics"): {"experiment": [partly]}})
    clock = iter(range(0, 10_000, 50))  # 0 (deadline 120), 50 and 100: a check each; 150: up
    fake_time = SimpleNamespace(monotonic=lambda: next(clock), sleep=lambda seconds: None)
    monkeypatch.setattr(ab_example, "call", api)
    monkeypatch.setattr(ab_example, "time", fake_time)
    posted = {
        "delivered": Counter({"A": 193, "B": 207}),
        "open": Counter({"A": 39, "B": 66}),
        "click": Counter({"A": 10, "B": 17}),
    }

    with pytest.raises(SystemExit) as stopped:
        ab_example.report("http://api", "key", posted)

    assert stopped.value.code == (
        "ab_example: gave up waiting for the analytics fold after 120 s: (delivered, opened, "
        "clicked) counted {'A': (193, 39, 10), 'B': (207, 60, 17)}, posted "
        "{'A': (193, 39, 10), 'B': (207, 66, 17)}"
    )
    assert len(api.calls) == 2
