"""Token-bucket rate limit per provider, its state in Redis so every worker process shares it.

One Lua script reads the bucket, refills it for the time elapsed (Redis's own clock, so hosts
with skewed clocks agree) and takes a token, atomically. A caller that gets no token is told
how long until one is available; it waits outside the worker (a countdown), never in it. The same
call can read other keys (`acquire(read=...)`): a caller that needs them anyway saves a round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# KEYS[1] the bucket, KEYS[2..] keys to read as well; ARGV[1] refill rate (tokens/s), ARGV[2]
# capacity (burst), ARGV[3] tokens wanted. Returns {n, "0"} when n >= 1 tokens were taken (as many
# as wanted and available), {0, "<seconds until one is available>"} when none, followed by the
# value of each key to read (nil when absent: Lua's false).
# Floats travel as strings: Redis truncates Lua numbers to integers in replies.
# On Redis Cluster the keys to read would be CROSSSLOT with the bucket (one script, one slot).
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
local wanted = tonumber(ARGV[3])
local allowed = 0
local wait = 0
if tokens >= 1 then
  allowed = math.min(wanted, math.floor(tokens))
  tokens = tokens - allowed
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local out = {allowed, tostring(wait)}
for i = 2, #KEYS do
  out[#out + 1] = redis.call('GET', KEYS[i])
end
return out
"""


@dataclass(frozen=True)
class Acquired:
    """`granted` tokens taken, or none and `wait` seconds until one will be available; `read`:
    the value of each key asked for (None: absent), when the bucket was in Redis at all."""

    granted: int
    wait: float = 0.0
    read: dict[str, Any] | None = None

    @property
    def allowed(self) -> bool:
        return self.granted > 0


class TokenBucket:
    """`rate` sends per second sustained, up to `burst` at once; `rate <= 0` means unlimited."""

    def __init__(self, redis: Any, name: str, *, rate: float, burst: int) -> None:
        self.key = f"notifier:bucket:{name}"
        self.rate = float(rate)
        self.burst = max(int(burst), 1)
        self._script = redis.register_script(_ACQUIRE)

    def acquire(self, wanted: int = 1, *, read: Sequence[str] = ()) -> Acquired:
        """Take up to `wanted` tokens, as many as there are (at least one, or none), and read
        the keys of `read` in the same call. An unlimited bucket makes no call (`read` None)."""
        wanted = max(int(wanted), 1)
        if self.rate <= 0:
            return Acquired(granted=wanted)
        granted, wait, *values = self._script(
            keys=[self.key, *read], args=[self.rate, self.burst, wanted]
        )
        return Acquired(
            granted=int(granted), wait=float(wait), read=dict(zip(read, values, strict=True))
        )
