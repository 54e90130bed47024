"""The chaos run, small: 2,000 notifications over email, SMS, push and in-app (a tenth of them
digested, and two topic notifications fanned out to every recipient) while the email provider
times out then fails, the email worker is SIGKILLed, Redis is flushed and SMS answers 429 — and
not one notification is lost (`make chaos` is the full-size run)."""

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
    a = result.account
    # 2,000 to one recipient each, and the topic's 250 subscribers but the actor: 249 on email,
    # 249 x 2 on push and in-app.
    fanned_out = 249 * 3
    assert a.expected_deliveries == 2000 + fanned_out, summary
    assert a.deliveries == 2000 + fanned_out, summary
    assert a.lost == 0, summary
    assert a.unexpected == 0, summary
    # 200 of them digested, each accounted through its digest's received delivery.
    assert a.digested + sum(a.digested_other.values()) == 200, summary
    assert a.digests["sent"] > 0, summary
    assert a.digests["open"] == 0, summary
    accounted = a.delivered + a.dead + a.digested + sum(a.digested_other.values())
    assert accounted == 2000 + fanned_out, summary
    fans = sorted((f.expected, f.in_db, f.missing) for f in a.fan_outs)
    assert fans == [(249, 249, 0), (498, 498, 0)], summary
    # Every fault was applied: the timeline names each one.
    timeline = "\n".join(result.timeline)
    for fault in ("(a) email simulator: timeouts", "(b) email worker", "(c) Redis FLUSHDB"):
        assert fault in timeline, summary
    assert "(d) sms simulator: 429" in timeline, summary
    # The analytics rollup (beat's folds through the faults, then folded to empty) equals a
    # direct count over the run's timeline: nothing counted twice, nothing missed.
    assert result.rollup is not None, summary
    assert result.rollup.ok, summary
    assert result.rollup.rollup["accepted"] >= 2000 + fanned_out, summary
