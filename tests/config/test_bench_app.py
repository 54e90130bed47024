"""apps.benchmarks (an unauthenticated write endpoint and a no-op task) is installed only
when BENCH_ENDPOINTS is on, as `make bench` sets it: never by the production or dev settings."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from tests.support.processes import ROOT

PROBE = (
    "import json, django; django.setup(); from django.conf import settings; "
    "from django.urls import Resolver404, resolve\n"
    "try:\n    resolve('/bench/notifications'); routed = True\n"
    "except Resolver404:\n    routed = False\n"
    "print(json.dumps({'installed': 'apps.benchmarks' in settings.INSTALLED_APPS, "
    "'routed': routed}))"
)


def _probe(settings_module: str, **extra: str) -> dict[str, bool]:
    env = {k: v for k, v in os.environ.items() if k != "BENCH_ENDPOINTS"}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": settings_module,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(64),
            **extra,
        }
    )
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("settings_module", ["config.settings.prod", "config.settings.dev"])
def test_production_and_dev_settings_do_not_install_the_bench_app(settings_module: str) -> None:
    assert _probe(settings_module) == {"installed": False, "routed": False}


def test_bench_endpoints_install_the_app_and_route_its_urls() -> None:
    assert _probe("config.settings.prod", BENCH_ENDPOINTS="1") == {
        "installed": True,
        "routed": True,
    }
