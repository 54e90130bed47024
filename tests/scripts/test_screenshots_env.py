"""scripts/screenshots.py run_env, the environment of the `make run` that it and
scripts.ab_example start: nothing of this shell's providers, database, Redis or ports reaches it
(scripts/run_dev.py would keep them instead of pointing at its own simulators), the rest does.
No Django here."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts import run_dev, screenshots

PORTS = {"SENDGRID_SIM_PORT": "1", "TWILIO_SIM_PORT": "2", "FCM_SIM_PORT": "3", "PORT": "4"}
# Provider settings that run_dev does not default but the service reads (config/settings).
OTHERS = (
    "FCM_CREDENTIALS",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "SMTP_HOST",
    "SMTP_PASSWORD",
    "SENDGRID_WEBHOOK_PUBLIC_KEY",
)


def _defaulted_by_run_dev() -> set[str]:
    env = dict(PORTS)
    run_dev.configure_providers(env)
    return set(env)


def test_no_provider_setting_of_the_shell_reaches_make_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    inherited = _defaulted_by_run_dev() | set(OTHERS) | {"DATABASE_URL", "REDIS_URL"}
    for name in inherited:
        monkeypatch.setenv(name, "https://api.example.com/from-the-shell")
    monkeypatch.setenv("LANG", "C.UTF-8")

    env = screenshots.run_env(tmp_path)

    assert sorted(inherited & set(env)) == ["DATABASE_URL"]
    assert env["DATABASE_URL"] == f"sqlite:///{tmp_path}/db.sqlite3"
    assert env["NOTIFIER_VAR_DIR"] == str(tmp_path)
    assert env["LANG"] == "C.UTF-8"


def test_run_dev_defaults_every_provider_it_points_at_a_simulator() -> None:
    # The first test inherits what configure_providers defaults: if it stopped defaulting
    # (a rename), that test would check nothing.
    defaulted = _defaulted_by_run_dev() - set(PORTS)

    assert {"SENDGRID_API_URL", "TWILIO_API_URL", "FCM_API_URL", "PUBLIC_BASE_URL"} <= defaulted
