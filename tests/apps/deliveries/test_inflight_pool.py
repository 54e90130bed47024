"""A provider's pool starts all its threads when it is made, so a worker's memory does not
grow with the backlog (bench/README: RSS at 10x the backlog)."""

from __future__ import annotations

import threading
from typing import Any

from apps.deliveries import inflight


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_a_new_pool_has_every_thread_before_its_first_call(settings: Any) -> None:
    # Given a provider allowed 12 calls in flight and no pool yet
    settings.PROVIDER_MAX_IN_FLIGHT = {"prestart-probe": 12}
    inflight.provider_pools_clear()
    try:
        # When the pool is made
        pool = inflight.provider_pool("prestart-probe")

        # Then its 12 threads are running, idle, and a call runs on one of them
        assert pool is not None
        assert len(_threads("send-prestart-probe")) == 12
        assert (
            pool.submit(lambda: threading.current_thread().name)
            .result(timeout=5)
            .startswith("send-prestart-probe")
        )
        assert len(_threads("send-prestart-probe")) == 12
    finally:
        inflight.provider_pools_clear()


def test_a_provider_without_a_limit_gets_no_pool_and_no_threads(settings: Any) -> None:
    settings.PROVIDER_MAX_IN_FLIGHT = {}
    inflight.provider_pools_clear()
    try:
        assert inflight.provider_pool("prestart-none") is None
        assert _threads("send-prestart-none") == []
    finally:
        inflight.provider_pools_clear()
