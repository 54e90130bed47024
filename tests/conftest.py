"""Shared fixtures: real PostgreSQL, Redis, provider simulators and Celery workers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from apps.clients.keycache import verified_keys
from notifier.queues import ALL_QUEUES
from tests.factories import ApiKeyFactory, RecipientFactory, TemplateFactory
from tests.support.processes import Simulator, Worker
from tests.support.smtp import SmtpServer

TWILIO_TEST_SID = "AC" + "1" * 32
TWILIO_TEST_TOKEN = "twilio-test-auth-token"


@pytest.fixture(autouse=True)
def forget_verified_keys() -> Iterator[None]:
    """Each test authenticates afresh: no key verified by an earlier test is remembered."""
    verified_keys.clear()
    yield
    verified_keys.clear()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(settings.REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def clean_redis(redis_client: redis.Redis) -> redis.Redis:
    """An empty Redis database (queues, throttles, breakers) for this test."""
    redis_client.flushdb()
    return redis_client


@pytest.fixture(scope="session")
def sendgrid_sim() -> Iterator[Simulator]:
    sim = Simulator("sendgrid")
    yield sim
    sim.stop()


@pytest.fixture
def sendgrid(sendgrid_sim: Simulator) -> Simulator:
    sendgrid_sim.reset()
    return sendgrid_sim


@pytest.fixture(scope="session")
def twilio_sim() -> Iterator[Simulator]:
    sim = Simulator("twilio")
    yield sim
    sim.stop()


@pytest.fixture
def twilio(twilio_sim: Simulator) -> Simulator:
    twilio_sim.reset()
    return twilio_sim


@pytest.fixture(scope="session")
def fcm_sim() -> Iterator[Simulator]:
    sim = Simulator("fcm")
    yield sim
    sim.stop()


@pytest.fixture
def fcm(fcm_sim: Simulator) -> Simulator:
    fcm_sim.reset()
    return fcm_sim


@pytest.fixture
def worker_env(
    sendgrid_sim: Simulator, twilio_sim: Simulator, fcm_sim: Simulator
) -> dict[str, str]:
    """Environment of test workers: providers pointed at the simulators, short retry delays."""
    return {
        "SENDGRID_API_URL": sendgrid_sim.url,
        "SENDGRID_API_KEY": "SG.test",
        "TWILIO_API_URL": twilio_sim.url,
        "TWILIO_ACCOUNT_SID": TWILIO_TEST_SID,
        "TWILIO_AUTH_TOKEN": TWILIO_TEST_TOKEN,
        "TWILIO_FROM": "+15550000001",
        "TWILIO_STATUS_CALLBACK_URL": "http://testserver/webhooks/twilio/status",
        "FCM_API_URL": fcm_sim.url,
        "FCM_PROJECT_ID": "notifier-test",
        "RETRY_BASE_SECONDS": "0.5",
        "RETRY_CAP_SECONDS": "5",
        # The breaker is tested on its own (tests/pipeline/test_failover.py); elsewhere it
        # must not turn a retry test's run of failures into a 30 s wait.
        "BREAKER_FAILURE_THRESHOLD": "1000",
    }


@pytest.fixture
def worker(
    transactional_db: None, clean_redis: redis.Redis, worker_env: dict[str, str]
) -> Iterator[Worker]:
    """A real Celery worker on every queue, against the test database."""
    proc = Worker(queues=ALL_QUEUES, env=worker_env)
    yield proc
    proc.stop()


@pytest.fixture
def worker_factory(
    transactional_db: None, clean_redis: redis.Redis, worker_env: dict[str, str]
) -> Iterator[Callable[..., Worker]]:
    """Start workers with extra environment or other queues; all stopped at the end."""
    started: list[Worker] = []

    def start(
        *, env: dict[str, str] | None = None, queues: list[str] | None = None, **kwargs: Any
    ) -> Worker:
        proc = Worker(queues=queues or ALL_QUEUES, env={**worker_env, **(env or {})}, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> SmtpServer:
    """A local SMTP server (aiosmtpd) recording what it accepts, emptied for this test."""
    smtp_server.reset()
    return smtp_server


@pytest.fixture
def api_key() -> tuple[object, str]:
    """(ApiKey row, raw key) for a fresh client."""
    return ApiKeyFactory.create_with_raw()


@pytest.fixture
def api(api_key: tuple[object, str]) -> APIClient:
    """An API client authenticated with `api_key`."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    return client


@pytest.fixture
def demo(api_key: tuple[object, str]) -> dict[str, object]:
    """A recipient and an email/sms/push/inapp template belonging to `api_key`'s client."""
    client = api_key[0].client  # type: ignore[attr-defined]
    recipient = RecipientFactory(client=client, external_id="user-1", name="Ada")
    template = TemplateFactory(client=client, key="order_shipped")
    return {"client": client, "recipient": recipient, "template": template}


@pytest.fixture
def back_to_the_latest_schema() -> Iterator[None]:
    """For migration tests: the tests after one need the whole schema again."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
