"""`make run` seeds a demo key on every start: the previous run's key is revoked."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from rest_framework.test import APIClient

from apps.clients.models import ApiKey
from apps.ops.management.commands.seed_demo import DEMO_CLIENT
from tests.support.processes import ROOT

pytestmark = [pytest.mark.django_db]


def _seed() -> str:
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    return str(json.loads(out.getvalue().strip().splitlines()[-1])["api_key"])


def _status(raw_key: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return int(client.get("/api/v1/notifications").status_code)


def test_each_run_prints_a_new_key_and_revokes_the_previous_ones() -> None:
    first = _seed()
    assert _status(first) == 200

    second = _seed()
    third = _seed()

    assert len({first, second, third}) == 3
    assert _status(first) == 401
    assert _status(second) == 401
    assert _status(third) == 200
    keys = ApiKey.objects.filter(client__name=DEMO_CLIENT)
    assert keys.count() == 3
    assert keys.filter(revoked_at__isnull=True).count() == 1


def test_other_clients_keys_are_left_alone(api_key: tuple[ApiKey, str]) -> None:
    _seed()
    _seed()

    assert _status(api_key[1]) == 200


def _seed_password(password_file: Path) -> str:
    out = io.StringIO()
    call_command("seed_demo", "--password-file", str(password_file), stdout=out)
    return str(json.loads(out.getvalue().strip().splitlines()[-1])["admin_password"])


def test_the_generated_admin_password_is_kept_and_reported_on_every_run(tmp_path: Path) -> None:
    """A first `make run` that fails after seeding must not lose the only copy."""
    kept = tmp_path / "var" / "admin_password"

    first = _seed_password(kept)
    second = _seed_password(kept)

    assert len(first) >= 16
    assert second == first
    assert kept.read_text().strip() == first
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert User.objects.get(username="admin").check_password(first)


def test_a_kept_password_that_no_longer_works_is_not_reported(tmp_path: Path) -> None:
    kept = tmp_path / "admin_password"
    _seed_password(kept)
    admin = User.objects.get(username="admin")
    admin.set_password("changed-in-the-admin")
    admin.save()

    assert _seed_password(kept) == ""
    kept.unlink()
    assert _seed_password(kept) == ""


def _files_holding(text: str, *roots: Path) -> list[Path]:
    return [
        path
        for root in roots
        if root.is_dir()
        for path in root.rglob("*")
        if path.is_file() and path.stat().st_size < 1_000_000 and text in path.read_text("latin-1")
    ]


def test_without_a_password_file_nothing_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the command could write the password unasked: the working directory (a relative
    default such as `var/admin_password`) and the checkout's var/ (make run's default)."""
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=out)

    passwords = [json.loads(line)["admin_password"] for line in out.getvalue().splitlines()]
    assert passwords[0] != ""
    assert passwords[1] == ""  # production: never stored, never shown again
    assert list(tmp_path.iterdir()) == []
    assert _files_holding(passwords[0], tmp_path, ROOT / "var") == []
