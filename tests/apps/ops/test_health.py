from __future__ import annotations

import pytest
from django.test import Client, override_settings


def test_healthz_is_200() -> None:
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_200_when_database_redis_and_broker_answer() -> None:
    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "broker": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_naming_redis_when_it_is_unreachable() -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"].startswith("unavailable")
    assert body["checks"]["database"] == "ok"
    assert "redis" in body["message"]
    assert response["Retry-After"] == "5"


def test_unknown_url_is_404_in_error_shape() -> None:
    response = Client().get("/api/v1/nothing-here")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found.", "fields": {}}


@pytest.mark.django_db
def test_readyz_is_200_at_once_after_redis_restarted() -> None:
    # The probe's client is kept per process: the connection it pooled died with the old
    # Redis, and that must not cost one false "not ready" after the restart.
    from tests.support.redis_server import RedisServer

    server = RedisServer()
    try:
        with override_settings(REDIS_URL=server.url):
            assert Client().get("/readyz").json()["checks"]["redis"] == "ok"
            server.stop()
            server.start()
            response = Client().get("/readyz")
    finally:
        server.stop()

    assert response.json()["checks"]["redis"] == "ok"
