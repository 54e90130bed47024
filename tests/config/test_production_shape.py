"""docker/ without a Docker engine: compose.yaml valid against the Compose Specification's JSON
schema (tests/config/data/compose-spec.json, from compose-spec/compose-spec, Apache-2.0), its
commands the Procfile's, its services waiting for the migration, and .dockerignore keeping the
local state out of the image."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker" / "compose.yaml"
SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"
# Processes that run the application and must not start before `release` has migrated.
AFTER_RELEASE = {
    "web",
    "ws",
    "worker_email",
    "worker_sms",
    "worker_push",
    "worker_inapp",
    "worker_timers",
    "worker_webhooks",
    "worker_maintenance",
    "beat",
}


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {name: cmd.strip() for name, _, cmd in (line.partition(":") for line in lines)}


def test_compose_is_valid_against_the_compose_specification() -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))

    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose())]

    assert errors == []


def test_the_schema_would_catch_a_misspelled_condition() -> None:
    validator = jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))
    broken = compose()
    broken["services"]["beat"]["depends_on"] = {"release": {"condition": "service_done"}}

    assert not validator.is_valid(broken)


def test_every_procfile_process_runs_in_compose_with_the_same_command() -> None:
    services = compose()["services"]

    for name, line in procfile().items():
        # Compose turns $$ into $; sh -c in the container expands ${X:-default} from its
        # environment, as the platform's shell does for the Procfile.
        assert services[name]["command"] == ["sh", "-c", line.replace("$", "$$")], name


def test_worker_concurrency_comes_from_the_environment_in_both() -> None:
    lines = procfile()

    for channel, default in (("EMAIL", 8), ("SMS", 8), ("PUSH", 8), ("INAPP", 4)):
        line = lines[f"worker_{channel.lower()}"]
        assert f"-c ${{{channel}_CONCURRENCY:-{default}}}" in line
    assert re.search(r"-c \d", COMPOSE.read_text()) is None  # no hard-coded concurrency left


def test_the_application_waits_for_the_migration_to_succeed() -> None:
    services = compose()["services"]

    for name in AFTER_RELEASE:
        assert services[name]["depends_on"]["release"] == {
            "condition": "service_completed_successfully"
        }, name
    assert "release" not in services["release"]["depends_on"]
    assert services["release"]["restart"] == "no"


def test_the_proxy_routes_to_web_and_ws_with_the_committed_config() -> None:
    proxy = compose()["services"]["proxy"]

    assert proxy["environment"]["NOTIFIER_REST_UPSTREAM"] == "web:8000"
    assert proxy["environment"]["NOTIFIER_WS_UPSTREAM"] == "ws:8001"
    (mount,) = proxy["volumes"]
    source, target, _ = mount.split(":")
    assert (COMPOSE.parent / source).resolve() == ROOT / "docker/nginx/notifier.conf.template"
    # The image renders templates/X.template to conf.d/X: default.conf replaces its own server.
    assert target == "/etc/nginx/templates/default.conf.template"


def test_dockerignore_keeps_local_state_and_secrets_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())

    assert {".venv", "var", ".git", ".env", "**/__pycache__", "staticfiles"} <= ignored


def test_every_long_running_procfile_process_execs_its_server() -> None:
    # `sh -c` (dash) runs a lone command as its child: the platform's SIGTERM would reach the
    # shell, never the server, and no graceful (warm) shutdown would happen.
    for name, line in procfile().items():
        if name == "release":  # a one-off job: nothing to stop gracefully
            continue
        last = line.split("&&")[-1].strip()
        assert last.startswith("exec "), name
        assert "&&" not in line or line.startswith("python manage.py check && "), name


def test_prometheus_and_the_proxy_reach_web_and_ws_by_the_ports_and_names_they_expect() -> None:
    services = compose()["services"]
    hosts = services["web"]["environment"]["DJANGO_ALLOWED_HOSTS"]
    upstreams = services["proxy"]["environment"]
    scraped = (COMPOSE.parent / "prometheus" / "prometheus.yml").read_text()

    # The scrape's Host header is web:8000 / ws:8001: a host Django does not allow is a 400.
    assert {"web", "ws"} <= set(
        hosts.removeprefix("${DJANGO_ALLOWED_HOSTS:-").rstrip("}").split(",")
    )
    assert services["web"]["environment"]["PORT"] == upstreams["NOTIFIER_REST_UPSTREAM"][4:]
    assert services["ws"]["environment"]["WS_PORT"] == upstreams["NOTIFIER_WS_UPSTREAM"][3:]
    assert "web:8000" in scraped
    assert "ws:8001" in scraped
    # The common environment is kept, not replaced, where a service adds to it.
    assert (
        services["ws"]["environment"]["DATABASE_URL"]
        == services["beat"]["environment"]["DATABASE_URL"]
    )


def test_the_proxy_starts_once_web_and_ws_answer_their_health_probe() -> None:
    services = compose()["services"]

    assert services["proxy"]["depends_on"] == {
        "web": {"condition": "service_healthy"},
        "ws": {"condition": "service_healthy"},
    }
    for name, port in (("web", 8000), ("ws", 8001)):
        assert f"http://127.0.0.1:{port}/healthz" in " ".join(services[name]["healthcheck"]["test"])


def test_nginx_accepts_every_body_the_app_accepts() -> None:
    # Bodies past MAX_REQUEST_BYTES get the app's 413 in the API's error shape, not nginx's page.
    template = (ROOT / "docker/nginx/notifier.conf.template").read_text()
    (size,) = re.findall(r"client_max_body_size (\d+)m;", template)

    assert int(size) * 1024 * 1024 > settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def test_shedding_raises_an_alert_on_the_metric_the_web_exports() -> None:
    from apps.core.admission import REQUESTS_SHED

    rules = yaml.safe_load((COMPOSE.parent / "prometheus" / "alerts.yml").read_text())
    exprs = {r["alert"]: r["expr"] for group in rules["groups"] for r in group["rules"]}

    assert f"{REQUESTS_SHED._name}_total" in exprs["NotifierRequestsShed"]


def test_docker_waits_longer_than_uvicorns_graceful_shutdown_before_killing_ws() -> None:
    ws = compose()["services"]["ws"]
    graceful = re.search(r"--timeout-graceful-shutdown (\d+)", ws["command"][-1])
    grace = re.fullmatch(r"(\d+)s", ws.get("stop_grace_period", "10s"))  # Docker's default

    assert graceful is not None
    assert grace is not None
    assert int(grace.group(1)) > int(graceful.group(1))
