"""The development secret key: random, made once into var/secret_key (0600), then reused."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from apps.core.secret_key import secret_key_file, secret_key_problem
from tests.support.processes import ROOT


def test_the_key_is_made_once_private_and_strong_then_reused(tmp_path: Path) -> None:
    path = tmp_path / "var" / "secret_key"

    first = secret_key_file(path)

    assert path.read_text().strip() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret_key_problem(first) is None
    assert secret_key_file(path) == first
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]  # no leftovers


def test_another_checkout_gets_another_key(tmp_path: Path) -> None:
    assert secret_key_file(tmp_path / "a") != secret_key_file(tmp_path / "b")


def test_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(lambda _: secret_key_file(path), range(32)))

    assert keys == {path.read_text().strip()}


def test_an_empty_key_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "secret_key"
    path.write_text("")

    key = secret_key_file(path)

    assert secret_key_problem(key) is None
    assert path.read_text().strip() == key


def test_development_settings_sign_with_the_checkout_key() -> None:
    """`manage.py` under the dev settings (as `make run` starts it) uses var/secret_key."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    env["DJANGO_SETTINGS_MODULE"] = "config.settings.dev"

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.SECRET_KEY)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert result.stdout.strip() == (ROOT / "var" / "secret_key").read_text().strip()
    assert secret_key_problem(result.stdout.strip()) is None
