"""The FCM send-rate ceiling: a token bucket shared by every worker through Redis (local otherwise).

Callers *reserve* tokens: the bucket may go negative and the caller sleeps until its share is due.
One round trip per batch, and N workers together never exceed ``rate`` messages per second on
average (bursts up to ``capacity``).
"""
from __future__ import annotations

import threading
import time

_RESERVE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(v[1])
local ts = tonumber(v[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate) - n
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate) + 60)
if tokens >= 0 then
  return '0'
end
return tostring(-tokens / rate)
"""


class TokenBucket:
    """``reserve(n)`` → seconds to wait before sending ``n`` messages; ``acquire(n)`` waits them."""

    def __init__(self, rate: float, capacity: float | None = None, redis=None,
                 key: str = "lienlac:fcm:rate", sleep=time.sleep, clock=None):
        """``clock``: seconds, for tests (default: Redis' own clock when shared, else monotonic)."""
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        self.capacity = float(capacity if capacity is not None else max(self.rate, 1.0))
        self.redis = redis
        self.key = key
        self.sleep = sleep
        self.clock = clock
        self._lock = threading.Lock()
        self._tokens = self.capacity
        self._ts = (clock or time.monotonic)()
        self._script = redis.register_script(_RESERVE) if redis is not None else None

    def reserve(self, n: int) -> float:
        if n <= 0:
            return 0.0
        if self._script is not None:
            args = [self.rate, self.capacity, n] + ([self.clock()] if self.clock else [])
            return float(self._script(keys=[self.key], args=args))
        with self._lock:
            now = (self.clock or time.monotonic)()
            self._tokens = min(self.capacity, self._tokens + (now - self._ts) * self.rate) - n
            self._ts = now
            return max(0.0, -self._tokens / self.rate)

    def acquire(self, n: int) -> float:
        wait = self.reserve(n)
        if wait > 0:
            self.sleep(wait)
        return wait

    def penalize(self, seconds: float) -> None:
        """FCM said slow down (429 Retry-After): nobody sends for ``seconds``."""
        self.reserve(int(seconds * self.rate))
