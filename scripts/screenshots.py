"""Retake the README's screenshots from the real pages: start `make run` (SQLite and the
embedded Redis in a scratch directory), send some traffic through it, and photograph the pages
in Debian's headless Chromium. `python -m scripts.screenshots` writes docs/dashboard.png,
docs/template-preview.png, docs/api-docs.png and docs/analytics-admin.png (from a month of
rollups `manage.py seed_analytics_demo` writes for the demo template).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
CHROMIUM = "/usr/bin/chromium"
UNSET = ("DATABASE_URL", "REDIS_URL", "PORT", "DJANGO_SETTINGS_MODULE", "DJANGO_SECRET_KEY")
RUN_DEV = [sys.executable, "-m", "scripts.run_dev"]
BANNER_TIMEOUT = 180.0  # seconds for `make run` to print its banner
STOP_TIMEOUT = 60.0  # seconds for `make run` to exit after SIGTERM (then SIGKILL)
# scripts/run_dev.py configure_providers() points each provider at its simulator only where the
# environment says nothing: inherited, these would send the run's mail, SMS and push to real
# providers (or another run's simulators), or give SendGrid an SMTP failover.
PROVIDER_PREFIXES = ("SENDGRID_", "TWILIO_", "FCM_", "GOOGLE_", "SMTP_")
PROVIDER_VARIABLES = ("PUBLIC_BASE_URL",)


def run_env(var_dir: Path) -> dict[str, str]:
    """This shell's environment for a `make run` of its own in `var_dir`: its own SQLite
    database, its embedded Redis, its ports and its provider simulators, whatever the shell
    points at (`start`'s `settings` are added after)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in UNSET
        and k not in PROVIDER_VARIABLES
        and not k.startswith(PROVIDER_PREFIXES)
        and not k.endswith("_SIM_PORT")
    }
    return env | {
        "NOTIFIER_VAR_DIR": str(var_dir),
        "DATABASE_URL": f"sqlite:///{var_dir}/db.sqlite3",
    }


def start(
    var_dir: Path, settings: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """`make run` in `var_dir` (with `settings` added to its environment), once it is up: the
    process and what its banner says (base URL, admin password, API key, Twilio sim). If it
    does not come up, or this is interrupted while waiting, it is stopped before this exits."""
    env = run_env(var_dir) | (settings or {})
    log = var_dir / "make-run.log"
    with log.open("wb") as output:  # the child has its own copy of the descriptor
        proc = subprocess.Popen(  # noqa: S603 - RUN_DEV, this checkout's own script
            RUN_DEV,
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + BANNER_TIMEOUT
        while "Ctrl-C stops everything." not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"make run did not come up:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.5)
    except BaseException:  # SystemExit and KeyboardInterrupt too: nothing is left running
        stop(proc)
        raise
    text = log.read_text(errors="replace").split("Notifier is up.")[-1]
    found = {
        "base": re.search(r"API\s+(http://\S+)/api/v1/", text),
        "password": re.search(r"admin / (\S+)", text),
        "key": re.search(r"API key\s+(\S+)", text),
        "twilio": re.search(r"Twilio sim\s+(http://\S+)/_sim/requests", text),
    }
    return proc, {name: match.group(1) for name, match in found.items() if match}


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop `make run` and everything it started (its process group): SIGTERM, then SIGKILL
    if it has not exited within STOP_TIMEOUT. Never raises: it runs in `finally` blocks and
    `except` clauses, where an error of its own would hide the one that brought us there."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT)
    except ProcessLookupError:
        proc.poll()  # the group is gone already: reap the leader if it is not yet
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"could not stop make run (pid {proc.pid}): {exc}", file=sys.stderr)


def exit_on_sigterm() -> None:
    """A `kill` (SIGTERM) of this script raises SystemExit, as Ctrl-C raises KeyboardInterrupt:
    the `finally` blocks then stop `make run` instead of leaving it running."""

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def call(
    method: str, url: str, body: Any = None, key: str = "", headers: dict[str, str] | None = None
) -> Any:
    """One request: `body` as JSON (bytes as they are); the answer's JSON, or its text when it
    is not JSON (a CSV). A 4xx or 5xx raises urllib's HTTPError."""
    sent = {"Content-Type": "application/json"} | (headers or {})
    if key:
        sent["Authorization"] = f"Bearer {key}"
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=sent)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - local
        answer = response.read()
        if "json" not in response.headers.get("Content-Type", "json"):
            return answer.decode()
        return json.loads(answer or b"null")


def traffic(run: dict[str, str]) -> None:
    """A few dozen notifications, some SMS refused by the provider, for the dashboard's charts."""
    call("POST", f"{run['twilio']}/_sim/faults", {"kind": "status", "status": 400, "share": 0.3})
    for n in range(36):
        channels = [["email"], ["sms"], ["inapp"], ["email", "inapp"]][n % 4]
        body = {
            "recipient": "demo-user",
            "template": "welcome",
            "variables": {"order_id": f"A-{1000 + n}"},
            "channels": channels,
        }
        call("POST", f"{run['base']}/api/v1/notifications", body, key=run["key"])
    time.sleep(8)


def seed_analytics(var_dir: Path) -> None:
    """A month of rollups for the demo template (the run's own traffic is minutes old)."""
    env = run_env(var_dir) | {"DJANGO_SETTINGS_MODULE": "config.settings.dev"}
    env["NOTIFIER_IGNORE_RUN_ENV"] = "1"
    subprocess.run(
        [sys.executable, "manage.py", "seed_analytics_demo"], cwd=ROOT, env=env, check=True
    )


@contextmanager
def admin_page(run: dict[str, str]) -> Iterator[Page]:
    """A page of Debian's headless Chromium logged in to the run's admin as `admin`; requests
    to any other host are refused (nothing is loaded from the internet)."""
    from playwright.sync_api import Route, sync_playwright

    base = run["base"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def local_only(route: Route) -> None:
            if route.request.url.startswith(base):
                route.continue_()
            else:
                route.abort()

        page.route("**/*", local_only)
        page.goto(f"{base}/admin/login/?next=/admin/")
        page.fill("#id_username", "admin")
        page.fill("#id_password", run["password"])
        page.click("input[type=submit]")
        page.wait_for_url(f"{base}/admin/")
        try:
            yield page
        finally:
            browser.close()


def photograph(run: dict[str, str]) -> None:
    from playwright.sync_api import expect

    base = run["base"]
    with admin_page(run) as page:
        page.goto(f"{base}/admin/dashboard/")
        page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)

        page.goto(f"{base}/admin/templates/template/?q=welcome")
        page.locator("#result_list th a", has_text="welcome").click()
        variants = page.locator("#id_variants")
        variants.fill(
            variants.input_value().replace(
                "Order {{ order_id }} shipped.",
                "Parcel {{ order_id }} is out for delivery: {{ tracking_url }}",
            )
        )
        page.fill("#preview-variables", '{"order_id": "A-1001"}')
        expect(page.locator("#live-errors-preview-variables")).to_be_visible()
        page.locator("#template-preview").scroll_into_view_if_needed()
        # The email's HTML renders in a sandboxed iframe that loads after the table.
        html = page.frame_locator("#template-preview iframe").first.locator("body")
        expect(html).to_contain_text("A-1001")
        page.locator("#template-preview").screenshot(path=str(DOCS / "template-preview.png"))

        page.goto(f"{base}/admin/analytics/")
        expect(page.locator("#analytics-charts svg")).to_have_count(4)
        page.screenshot(path=str(DOCS / "analytics-admin.png"), full_page=True)

        page.goto(f"{base}/api/docs/")
        expect(page.locator(".opblock-summary").first).to_be_visible(timeout=15000)
        page.screenshot(path=str(DOCS / "api-docs.png"))


def main() -> int:
    exit_on_sigterm()
    with tempfile.TemporaryDirectory(prefix="notifier-shots-") as scratch:
        proc = None
        try:
            proc, run = start(Path(scratch))
            traffic(run)
            seed_analytics(Path(scratch))
            photograph(run)
        finally:
            if proc is not None:
                stop(proc)
    print(
        "wrote docs/dashboard.png, docs/template-preview.png, docs/api-docs.png, "
        "docs/analytics-admin.png"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
