"""Circuit breaker per provider, its state in Redis so every worker process shares it.

States:
- closed: calls go through. `failure_threshold` consecutive transient failures open it
  (consecutive rather than a rate over a window: one counter, one key, no clock buckets, and
  a provider that answers at all in between is not down).
- open: calls are refused for `open_seconds`; callers are told how long is left.
- half-open: once `open_seconds` have passed, exactly one caller gets a probe permit (a slot
  held for at most `probe_timeout_seconds`, in case the prober dies); everyone else keeps
  waiting. The probe's success closes the breaker, its failure opens it again for
  `open_seconds`.

A success in any state closes the breaker: the provider evidently answers. A permanent failure
(bad address, 4xx) is an answer too and counts as a success. Each transition is one Lua script,
on Redis's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"

# KEYS[1] the breaker hash. Returns {kind, "wait seconds"}:
# kind 1 = allowed (closed), 2 = allowed as the half-open probe, 0 = refused.
_ALLOW = """
local probe_ms = tonumber(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'state', 'opened_until', 'probe_until')
if state[1] ~= 'open' then
  return {1, '0'}
end
local opened_until = tonumber(state[2]) or 0
if now < opened_until then
  return {0, tostring((opened_until - now) / 1000)}
end
local probe_until = tonumber(state[3]) or 0
if now < probe_until then
  return {0, tostring((probe_until - now) / 1000)}
end
redis.call('HSET', KEYS[1], 'probe_until', now + probe_ms)
return {2, '0'}
"""

# ARGV[1] threshold, ARGV[2] open ms. Returns 1 when this failure opened (or re-opened) it.
_FAILURE = """
local threshold = tonumber(ARGV[1])
local open_ms = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'state', 'opened_until')
if state[1] == 'open' then
  local opened_until = tonumber(state[2]) or 0
  if now < opened_until then
    return 0
  end
  redis.call('HSET', KEYS[1], 'opened_until', now + open_ms, 'probe_until', 0)
  redis.call('HINCRBY', KEYS[1], 'opened_count', 1)
  return 1
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= threshold then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_until', now + open_ms, 'probe_until', 0)
  redis.call('HINCRBY', KEYS[1], 'opened_count', 1)
  return 1
end
return 0
"""

_SUCCESS = """
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'opened_until', 0, 'probe_until', 0)
return 1
"""

# Give the probe slot back without a verdict (the probe was not used for a call).
_RELEASE = """
redis.call('HSET', KEYS[1], 'probe_until', 0)
return 1
"""


@dataclass(frozen=True)
class Permit:
    """`allowed` (as `probe` when half-open), or else `wait` seconds before asking again."""

    allowed: bool
    probe: bool = False
    wait: float = 0.0


class CircuitBreaker:
    def __init__(
        self,
        redis: Any,
        name: str,
        *,
        failure_threshold: int,
        open_seconds: float,
        probe_timeout_seconds: float,
    ) -> None:
        self.name = name
        self.key = f"notifier:breaker:{name}"
        self.failure_threshold = max(int(failure_threshold), 1)
        self.open_ms = int(open_seconds * 1000)
        self.probe_ms = int(probe_timeout_seconds * 1000)
        self._redis = redis
        self._allow = redis.register_script(_ALLOW)
        self._failure = redis.register_script(_FAILURE)
        self._success = redis.register_script(_SUCCESS)
        self._release = redis.register_script(_RELEASE)

    def allow(self) -> Permit:
        """May a call go to the provider now?"""
        kind, wait = self._allow(keys=[self.key], args=[self.probe_ms])
        kind = int(kind)
        if kind == 0:
            return Permit(allowed=False, wait=float(wait))
        return Permit(allowed=True, probe=kind == 2)

    def record_success(self) -> None:
        self._success(keys=[self.key])

    def record_failure(self) -> bool:
        """Count a transient failure. True when it opened the breaker."""
        return int(self._failure(keys=[self.key], args=[self.failure_threshold, self.open_ms])) == 1

    def release_probe(self) -> None:
        """The probe permit was not used (nothing was sent): let the next caller probe."""
        self._release(keys=[self.key])

    def state(self) -> str:
        """closed, open or half-open (open with its time up), for admin pages and tests."""
        values = self._redis.hmget(self.key, "state", "opened_until")
        if values[0] is None or values[0].decode() != OPEN:
            return CLOSED
        seconds, micros = self._redis.time()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return OPEN if now_ms < int(float(values[1] or 0)) else HALF_OPEN

    def reset(self) -> None:
        self._redis.delete(self.key)
