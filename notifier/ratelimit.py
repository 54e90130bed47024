"""Token-bucket rate limit per provider, its state in Redis so every worker process shares it.

One Lua script reads the bucket, refills it for the time elapsed (Redis's own clock, so hosts
with skewed clocks agree) and takes a token, atomically. A caller that gets no token is told
how long until one is available; it waits outside the worker (a countdown), never in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# KEYS[1] the bucket; ARGV[1] refill rate (tokens/s), ARGV[2] capacity (burst).
# Returns {1, "0"} when a token was taken, {0, "<seconds until one is available>"} when not.
# Floats travel as strings: Redis truncates Lua numbers to integers in replies.
_ACQUIRE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


@dataclass(frozen=True)
class Acquired:
    """`allowed`, or else `wait` seconds until a token will be available."""

    allowed: bool
    wait: float = 0.0


class TokenBucket:
    """`rate` sends per second sustained, up to `burst` at once; `rate <= 0` means unlimited."""

    def __init__(self, redis: Any, name: str, *, rate: float, burst: int) -> None:
        self.key = f"notifier:bucket:{name}"
        self.rate = float(rate)
        self.burst = max(int(burst), 1)
        self._script = redis.register_script(_ACQUIRE)

    def acquire(self) -> Acquired:
        """Take one token if there is one."""
        if self.rate <= 0:
            return Acquired(allowed=True)
        allowed, wait = self._script(keys=[self.key], args=[self.rate, self.burst])
        if int(allowed) == 1:
            return Acquired(allowed=True)
        return Acquired(allowed=False, wait=float(wait))
