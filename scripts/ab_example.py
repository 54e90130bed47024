"""A worked A/B test from a real run, for docs/analytics.md: `python -m scripts.ab_example`.

Starts `make run` (SQLite and the embedded Redis in a scratch directory, as scripts/screenshots.py
does: provider settings of this shell are dropped, so every provider is its simulator) with a
freshly generated SendGrid event-webhook key, the analytics fold every second and every other
setting the figures depend on given explicitly (SETTINGS: ANALYTICS_AB_MIN_SAMPLE=100, each
label gets about 200). Then, through the public API only, printing each call as curl with its
(abbreviated) answer: gives the template `welcome` two email variants A and B (50/50), creates
RECIPIENTS recipients, sends them one notification and waits until the workers have sent every
email (to the SendGrid simulator). The simulator does not open or click anything, so the script
then plays SendGrid's part: signed event webhooks to /webhooks/sendgrid, `delivered` for every
email, `open` for 20% of A and 32% of B, `click` for 5% and 8% (a seeded draw: every run gives
the same figures). Once the fold has counted them it prints the analytics API's answer (JSON and
CSV), photographs the template's A/B section and its analytics page in headless Chromium
(docs/ab-test-admin.png, docs/ab-test-analytics.png), promotes the open rate's winner with the
admin's Promote button and photographs the template's versions with the promotion's note
(docs/ab-test-promoted.png). A run whose split, counts, verdicts or winner differ from what
docs/analytics.md states (DOCUMENTED) stops before the photographs, exit status 1, naming what
changed. Under a minute.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from scripts.ab_webhooks import (
    SIGNATURE_HEADER,
    EventSigner,
    Sent,
    engagement,
    payload,
    sendgrid_event,
)
from scripts.screenshots import DOCS, admin_page, call, exit_on_sigterm, start, stop

if TYPE_CHECKING:
    from playwright.sync_api import FloatRect

T = TypeVar("T")

RECIPIENTS = 400
SEED = 17
OPEN_SHARE = {"A": 0.20, "B": 0.32}
CLICK_SHARE = {"A": 0.05, "B": 0.08}
# Every setting the figures depend on, given explicitly rather than inherited from the shell
# (the providers' are dropped: scripts/screenshots.py run_env). The defaults, but for the fold's
# interval: beat folds the timeline into the rollup every second instead of 5.
SETTINGS = {
    "ANALYTICS_ENABLED": "true",
    "ANALYTICS_FOLD_INTERVAL": "1",
    "ANALYTICS_FOLD_BATCH": "2000",
    "ANALYTICS_FOLD_BUDGET_SECONDS": "2.0",
    "ANALYTICS_AB_MIN_SAMPLE": "100",  # no verdict before each label is sent to 100
    "ANALYTICS_CURRENCY": "USD",
    "ANALYTICS_COSTS": json.dumps(
        {
            "email": {"sendgrid": "0.0004", "smtp": "0"},
            "sms": {"twilio": "0.0083"},
            "push": {"fcm": "0"},
        }
    ),
}
# What docs/analytics.md ("A worked example") states of the run: a run that differs stops before
# any figure is written, naming what changed (the doc and the figures are then out of date).
DOCUMENTED: dict[str, Any] = {
    "sent": {"A": 193, "B": 207},
    "opened": {"A": 39, "B": 66},
    "clicked": {"A": 10, "B": 17},
    "open verdict": "b",
    "click verdict": "none",
    "open rate's winner (promoted)": "B",
}
COUNTS = ("sent", "opened", "clicked")
EVENTS_PER_POST = 100  # SendGrid batches events; a few hundred per post at most
SENT = {"sent", "delivered", "opened", "clicked"}
NEVER_SENT = {"failed", "dead", "skipped", "cancelled"}  # final: waiting longer will not help
TEMPLATE = {
    "category": "onboarding",
    "variants": [
        {
            "channel": "email",
            "label": "A",
            "weight": 50,
            "subject": "Welcome, {{ recipient.name }}",
            "body": "Hi {{ recipient.name }}, your account is ready.",
        },
        {
            "channel": "email",
            "label": "B",
            "weight": 50,
            "subject": "{{ recipient.name }}, your account is ready: take the tour",
            "body": "Hi {{ recipient.name }}, your account is ready.",
        },
    ],
}


def abbreviated(value: Any, items: int = 1) -> Any:
    """`value` with each list cut to its first `items` entries and a note of how many more."""
    if isinstance(value, dict):
        return {key: abbreviated(item, items) for key, item in value.items()}
    if isinstance(value, list) and len(value) > items:
        kept = [abbreviated(item, items) for item in value[:items]]
        return [*kept, f"… {len(value) - items} more"]
    if isinstance(value, list):
        return [abbreviated(item, items) for item in value]
    return value


def show(
    method: str,
    path: str,
    body: Any = None,
    answer: Any = None,
    *,
    headers: dict[str, str] | None = None,
    key: bool = True,
) -> None:
    """Print a call as curl (with $API and $KEY), then its answer (JSON shown as JSON)."""
    lines = [f'curl -s -X {method} "$API{path}"']
    if key:
        lines.append('-H "Authorization: Bearer $KEY"')
    lines += [f"-H '{name}: {value}'" for name, value in (headers or {}).items()]
    if body is not None:
        lines.append(
            f"-H 'Content-Type: application/json' -d '{json.dumps(body, ensure_ascii=False)}'"
        )
    print("\n$ " + " \\\n    ".join(lines))
    print(answer if isinstance(answer, str) else json.dumps(answer, indent=1, ensure_ascii=False))


def wait_for(
    what: str,
    check: Callable[[], T | None],
    timeout: float = 180.0,
    every: float = 1.0,
    *,
    last: Callable[[], str] | None = None,
) -> T:
    """Call `check` until it returns something true; exit naming `what` after `timeout`, with
    what `last` says of the last check."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    seen = f": {last()}" if last else ""
    sys.exit(f"ab_example: gave up waiting for {what} after {timeout:.0f} s{seen}")


def set_up(api: str, key: str) -> list[str]:
    """The A/B template and the recipients; their external ids."""
    put = call("PUT", f"{api}/api/v1/templates/welcome", TEMPLATE, key=key)
    show("PUT", "/api/v1/templates/welcome", TEMPLATE, abbreviated(put, 2))
    ids = [f"user-{n:03d}" for n in range(1, RECIPIENTS + 1)]
    for n, external_id in enumerate(ids, start=1):
        body = {"email": f"{external_id}@example.com", "name": f"Reader {n}"}
        answer = call("PUT", f"{api}/api/v1/recipients/{external_id}", body, key=key)
        if n == 1:
            show("PUT", f"/api/v1/recipients/{external_id}", body, answer)
    print(f"# ... and the same for user-002 to {ids[-1]} ({RECIPIENTS} recipients)")
    return ids


def send(api: str, key: str, ids: list[str]) -> list[Sent]:
    """One notification to every recipient; once every email is sent, each delivery."""
    body = {"recipients": ids, "template": "welcome", "channels": ["email"]}
    accepted = call("POST", f"{api}/api/v1/notifications", body, key=key)
    shown = body | {"recipients": [*ids[:2], f"… {len(ids) - 2} more"]}
    show("POST", "/api/v1/notifications", shown, abbreviated(accepted))
    path = f"/api/v1/notifications/{accepted['id']}"
    started = time.monotonic()

    def all_sent() -> dict[str, Any] | None:
        detail: dict[str, Any] = call("GET", f"{api}{path}", key=key)
        lost = [d for d in detail["deliveries"] if d["status"] in NEVER_SENT]
        if lost:
            first, more = lost[0], f" (and {len(lost) - 1} more)" if len(lost) > 1 else ""
            sys.exit(
                f"ab_example: delivery {first['id']} to {first['recipient']} is "
                f"{first['status']}{more}: {first['reason'] or 'no reason given'}"
            )
        done = all(d["status"] in SENT for d in detail["deliveries"])
        return detail if done and len(detail["deliveries"]) == len(ids) else None

    detail = wait_for("the workers to send every email", all_sent)
    print(f"# every email sent {time.monotonic() - started:.1f} s after the 202")
    first = detail["deliveries"][0]
    kept = ("id", "recipient", "channel", "status", "provider", "provider_message_id", "variant")
    shown_detail = {
        **{k: detail[k] for k in ("id", "template", "template_version")},
        "deliveries": [{k: first[k] for k in kept}, f"… {len(ids) - 1} more"],
    }
    show("GET", path, None, shown_detail)
    labels = Counter(d["variant"] for d in detail["deliveries"])
    print(f"# sent per label: {dict(sorted(labels.items()))}")
    return [
        Sent(
            id=d["id"],
            recipient=d["recipient"],
            email=f"{d['recipient']}@example.com",
            variant=d["variant"],
            provider_message_id=d["provider_message_id"],
        )
        for d in detail["deliveries"]
    ]


def play_sendgrid(api: str, signer: EventSigner, sent: list[Sent]) -> dict[str, Counter[str]]:
    """SendGrid's signed event webhooks: delivered for all, then the seeded opens and clicks.
    Per kind, how many events were posted per label."""
    plan = engagement(sent, open_share=OPEN_SHARE, click_share=CLICK_SHARE, seed=SEED)
    posted: dict[str, Counter[str]] = {}
    for kind, who in plan.items():
        at = int(time.time())
        applied = 0
        for start_at in range(0, len(who), EVENTS_PER_POST):
            events = [
                sendgrid_event(kind, s, at=at) for s in who[start_at : start_at + EVENTS_PER_POST]
            ]
            body = payload(events)
            headers = signer.headers(body)
            answer = call("POST", f"{api}/webhooks/sendgrid", body, headers=headers)
            applied += answer["applied"]
            if start_at == 0 and kind in ("delivered", "open"):
                shown_headers = headers | {SIGNATURE_HEADER: headers[SIGNATURE_HEADER][:16] + "…"}
                shown = abbreviated(events)
                show("POST", "/webhooks/sendgrid", shown, answer, headers=shown_headers, key=False)
        if applied != len(who):
            sys.exit(f"ab_example: {kind}: {applied} of {len(who)} events applied")
        posted[kind] = Counter(s.variant for s in who)
        counts = ", ".join(f"{label} {n}" for label, n in sorted(posted[kind].items()))
        print(f"# {kind}: {len(who)} events posted and applied ({counts})")
    return posted


def report(api: str, key: str, posted: dict[str, Counter[str]]) -> dict[str, Any]:
    """Once the fold has counted every event: the analytics API's answer, JSON and CSV."""
    query = urllib.parse.urlencode({"group_by": "variant", "template": "welcome"})
    path = f"/api/v1/analytics?{query}"
    expected = {
        label: (posted["delivered"][label], posted["open"][label], posted["click"][label])
        for label in OPEN_SHARE
    }

    counted: dict[str, tuple[int, int, int]] = {}

    def folded() -> dict[str, Any] | None:
        answer: dict[str, Any] = call("GET", f"{api}{path}", key=key)
        test = (answer.get("experiment") or [{}])[0]
        counted.clear()
        counted.update(
            (arm["label"], (arm["delivered"], arm["opened"], arm["clicked"]))
            for arm in test.get("labels", [])
        )
        return answer if counted == expected else None

    def last() -> str:
        return f"(delivered, opened, clicked) counted {counted or 'nothing'}, posted {expected}"

    answer = wait_for("the analytics fold", folded, timeout=120, last=last)
    show("GET", path, None, answer)
    csv = call("GET", f"{api}{path}", key=key, headers={"Accept": "text/csv"})
    show("GET", path, None, csv, headers={"Accept": "text/csv"})
    return answer


def differences(experiment: dict[str, Any]) -> list[str]:
    """What of `experiment` (the analytics API's A/B test) differs from what docs/analytics.md
    states (DOCUMENTED): a line each, none when the run is the documented one."""
    labels = experiment.get("labels") or []
    found = {
        **{count: {arm["label"]: arm[count] for arm in labels} for count in COUNTS},
        "open verdict": _verdict(experiment, "open"),
        "click verdict": _verdict(experiment, "click"),
        "open rate's winner (promoted)": _winner(experiment) or None,
    }
    return [
        f"{what}: {found[what]} (docs/analytics.md: {documented})"
        for what, documented in DOCUMENTED.items()
        if found[what] != documented
    ]


def photograph(run: dict[str, str], experiment: dict[str, Any]) -> list[str]:
    """The template's A/B section and analytics page; then the open rate's winner promoted and
    the versions list. The files written."""
    from playwright.sync_api import expect

    base = run["base"]
    winner = _winner(experiment)
    written = []
    with admin_page(run) as page:
        page.goto(f"{base}/admin/templates/template/?q=welcome")
        page.locator("#result_list th a", has_text="welcome").click()
        section = page.locator("#template-experiments")
        expect(section.locator("tr.experiment-label-B td").nth(2)).to_have_text(
            str(experiment["labels"][1]["sent"])
        )
        section.screenshot(path=str(DOCS / "ab-test-admin.png"))
        written.append("docs/ab-test-admin.png")

        page.click("#template-analytics")
        expect(page.locator("h1")).to_have_text("Analytics: welcome")
        top = page.locator("#content h1").bounding_box()
        bottom = page.locator("#experiment").bounding_box()
        if top is None or bottom is None:
            sys.exit("ab_example: the analytics page has no A/B section")
        clip: FloatRect = {
            "x": 0,
            "y": top["y"] - 8,
            "width": 1280,
            "height": bottom["y"] + bottom["height"] - top["y"] + 9,
        }
        page.screenshot(path=str(DOCS / "ab-test-analytics.png"), clip=clip, full_page=True)
        written.append("docs/ab-test-analytics.png")

        page.go_back()
        page.once("dialog", lambda dialog: dialog.accept())
        page.locator(f"#template-experiments tr.experiment-label-{winner} button").click()
        expect(page.locator(".messagelist .success")).to_contain_text(f"Promoted {winner}")
        print(f"# admin: {page.locator('.messagelist .success').inner_text()}")
        versions = page.locator("#versions-group")
        expect(versions).to_contain_text(f"promoted {winner} of email/en (by admin)")
        versions.screenshot(path=str(DOCS / "ab-test-promoted.png"))
        written.append("docs/ab-test-promoted.png")
    return written


def _verdict(experiment: dict[str, Any], measure: str) -> str | None:
    """The first comparison's verdict on `measure` ("open", "click"); None before one is given."""
    comparison = (experiment.get("comparisons") or [{}])[0]
    verdict = (comparison.get(measure) or {}).get("verdict")
    return str(verdict) if verdict else None


def _winner(experiment: dict[str, Any]) -> str:
    """The label the open rate's verdict picks: "" when it picks none (no verdict yet, or no
    significant difference)."""
    comparison = (experiment.get("comparisons") or [{}])[0]
    verdict = _verdict(experiment, "open")
    if verdict == "a":
        return str(comparison["against"])
    if verdict == "b":
        return str(comparison["label"])
    return ""


def main() -> int:
    exit_on_sigterm()
    began = time.monotonic()
    signer = EventSigner()
    settings = SETTINGS | {"SENDGRID_WEBHOOK_PUBLIC_KEY": signer.public_key}
    with tempfile.TemporaryDirectory(prefix="notifier-ab-") as scratch:
        proc = None
        try:
            proc, run = start(Path(scratch), settings)
            api, key = run["base"], run["key"]
            print(f"# make run is up: API={api} (KEY: the demo key its banner printed)")
            print("# with every provider at its simulator, these settings:")
            print("\n".join(f"#   {name}={value}" for name, value in SETTINGS.items()))
            print("# and SENDGRID_WEBHOOK_PUBLIC_KEY: the public half of an ECDSA P-256 key this")
            print("# script generated")
            sent = send(api, key, set_up(api, key))
            posted = play_sendgrid(api, signer, sent)
            answer = report(api, key, posted)
            experiment = answer["experiment"][0]
            changed = differences(experiment)
            if changed:
                sys.exit(
                    "ab_example: the run differs from docs/analytics.md (no figure written):\n  "
                    + "\n  ".join(changed)
                )
            written = photograph(run, experiment)
            versions = call("GET", f"{api}/api/v1/templates/welcome/versions", key=key)
            show("GET", "/api/v1/templates/welcome/versions", None, abbreviated(versions, 1))
        finally:
            if proc is not None:
                stop(proc)
    print(f"# wrote {', '.join(written)} in {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
