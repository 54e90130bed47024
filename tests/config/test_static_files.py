"""Production serves the static files `collectstatic` gathered (the Dockerfile's step), with
WhiteNoise under uvicorn: content-hashed names, compressed, cached for a year."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.asgi import AsgiServer
from tests.support.processes import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def test_production_serves_what_collectstatic_gathered(tmp_path: Path) -> None:
    static_root = tmp_path / "staticfiles"
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    # What the Dockerfile runs: production settings, a throwaway key, nothing else set.
    build_env = {
        **env,
        "DJANGO_SETTINGS_MODULE": "config.settings.prod",
        "DJANGO_SECRET_KEY": "build",
        "DJANGO_STATIC_ROOT": str(static_root),
    }
    collected = subprocess.run(  # noqa: S603
        [sys.executable, str(ROOT / "manage.py"), "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=build_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert collected.returncode == 0, collected.stderr
    manifest = json.loads((static_root / "staticfiles.json").read_text())["paths"]
    base_css = manifest["admin/css/base.css"]
    assert base_css != "admin/css/base.css"  # content-hashed

    server = AsgiServer(
        name="prod-static",
        env={
            "DJANGO_SETTINGS_MODULE": "config.settings.prod",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            "DJANGO_STATIC_ROOT": str(static_root),
            "SECURE_SSL_REDIRECT": "0",
            "PUBLIC_BASE_URL": "https://notify.example.com",
        },
    )
    try:
        login = requests.get(f"{server.url}/admin/login/", timeout=10)
        docs = requests.get(f"{server.url}/api/docs/", timeout=10)
        referenced = set(re.findall(r'(?:href|src)="(/static/[^"]+)"', login.text + docs.text))
        statuses = {
            url: requests.get(server.url + url, timeout=10).status_code for url in referenced
        }
        css = requests.get(
            f"{server.url}/static/{base_css}", headers={"Accept-Encoding": "gzip"}, timeout=10
        )
    finally:
        server.stop()

    assert login.status_code == 200
    assert docs.status_code == 200
    assert f"/static/{base_css}" in referenced
    assert any("drf_spectacular_sidecar/swagger-ui-dist/" in url for url in referenced)
    assert {url: s for url, s in statuses.items() if s != 200} == {}
    assert css.status_code == 200
    assert css.headers["Content-Encoding"] == "gzip"
    assert "max-age=315360000" in css.headers["Cache-Control"]
    assert "immutable" in css.headers["Cache-Control"]
