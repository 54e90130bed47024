"""bench.cpu_split's arithmetic: CPU seconds per process group between two snapshots (a process
that appeared meanwhile counts from zero, one that went away is not counted), per request
answered 2xx; and this process's own CPU time read from /proc agrees with the kernel's."""

from __future__ import annotations

import os
import time

from bench.cpu_split import cpu_seconds, delta, per_request_ms
from bench.load import LoadResult


def test_delta_counts_new_processes_from_zero_and_drops_gone_ones() -> None:
    before = {"gunicorn": {1: 2.0, 2: 5.0}, "client": {0: 10.0}}
    after = {"gunicorn": {1: 2.5, 3: 0.25}, "client": {0: 10.75}}

    assert delta(before, after) == {"gunicorn": 0.75, "client": 0.75}


def test_per_request_is_per_accepted_request_in_ms() -> None:
    result = LoadResult(requests=600, seconds=10.0, ok=500, errors=100, p50_ms=1, p99_ms=2)

    assert per_request_ms({"gunicorn": 2.0, "nginx": 0.0}, result) == {
        "gunicorn": 4.0,
        "nginx": 0.0,
    }


def test_a_process_cpu_time_is_read_from_proc() -> None:
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:  # burn some CPU of our own
        pass

    ours = cpu_seconds(os.getpid())
    times = os.times()

    assert abs(ours - (times.user + times.system)) < 0.05
    assert cpu_seconds(2**22 + 12345) == 0.0  # no such process
