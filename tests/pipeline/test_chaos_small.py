"""The chaos run, small: 2,000 notifications over email, SMS, push and in-app while the email
provider times out then fails, the email worker is SIGKILLed, Redis is flushed and SMS answers
429 — and not one notification is lost (`make chaos` is the full-size run)."""

from __future__ import annotations

import os

import pytest
import redis
from django.conf import settings

from bench.chaos import ChaosConfig, report, run
from tests.support import processes

pytestmark = [pytest.mark.pipeline]


def chaos_test_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": processes.test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "WARNING",
            "API_KEY_RATE": "1000000/min",
            "SENDGRID_RATE_PER_SECOND": "0",
            "TWILIO_RATE_PER_SECOND": "0",
            "FCM_RATE_PER_SECOND": "0",
        }
    )
    return env


@pytest.mark.timeout(900)
def test_chaos_small_loses_nothing(transactional_db: None, clean_redis: redis.Redis) -> None:
    lines: list[str] = []
    cfg = ChaosConfig(
        notifications=2000,
        batch=100,
        connections=4,
        fault_scale=0.2,
        settle_timeout=600,
        web_workers=1,
        recipients=250,
        log=lines.append,
    )

    result = run(cfg, chaos_test_env())

    summary = report(result, cfg) + "\n" + "\n".join(lines)
    assert result.settled, summary
    assert result.burst.failed == 0, summary
    assert result.account.expected_deliveries == 2000, summary
    assert result.account.deliveries == 2000, summary
    assert result.account.lost == 0, summary
    assert result.account.delivered + result.account.dead == 2000, summary
    # Every fault was applied: the timeline names each one.
    timeline = "\n".join(result.timeline)
    for fault in ("(a) email simulator: timeouts", "(b) email worker", "(c) Redis FLUSHDB"):
        assert fault in timeline, summary
    assert "(d) sms simulator: 429" in timeline, summary
