"""The FCM send-rate ceiling: a token bucket shared by every worker through Redis (local otherwise).

Callers *reserve* tokens: the bucket may go negative and the caller sleeps until its share is due.
One round trip per batch, and N workers together never exceed ``rate`` messages per second on
average (bursts up to ``capacity``).

``penalize(seconds)`` is FCM's ``Retry-After`` (429/503): the bucket is emptied and its refill
starts only ``seconds`` from now, so every sender sharing the key waits out the pause in its next
``reserve`` (penalties from several workers at once take the latest end, they do not add up).
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
local pause = tonumber(ARGV[5] or '0')
if now > ts then  -- ts ahead of now: a pause, the bucket refills only from then on
  tokens = math.min(capacity, tokens + (now - ts) * rate)
  ts = now
end
if pause > 0 then
  if now + pause > ts then ts = now + pause end
  tokens = math.min(tokens, 0)
end
tokens = tokens - n
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(ts))
redis.call('EXPIRE', KEYS[1], math.ceil((ts - now) + (capacity - tokens) / rate) + 60)
local wait = (ts - now) + math.max(0, -tokens / rate)
return tostring(wait)
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

    def reserve(self, n: int, pause: float = 0.0) -> float:
        """Take ``n`` tokens (after a pause of ``pause`` seconds from now, if given): the seconds to wait."""
        if n <= 0 and pause <= 0:
            return 0.0
        if self._script is not None:
            args = [self.rate, self.capacity, n, self.clock() if self.clock else "", pause]
            return max(0.0, float(self._script(keys=[self.key], args=args)))
        with self._lock:
            now = (self.clock or time.monotonic)()
            if now > self._ts:
                self._tokens = min(self.capacity, self._tokens + (now - self._ts) * self.rate)
                self._ts = now
            if pause > 0:
                self._ts = max(self._ts, now + pause)
                self._tokens = min(self._tokens, 0.0)
            self._tokens -= n
            return max(0.0, (self._ts - now) + max(0.0, -self._tokens / self.rate))

    def acquire(self, n: int) -> float:
        wait = self.reserve(n)
        if wait > 0:
            self.sleep(wait)
        return wait

    def penalize(self, seconds: float) -> None:
        """FCM said slow down (429/503 Retry-After): no sender sharing this bucket sends for ``seconds``."""
        if seconds > 0:
            self.reserve(0, pause=seconds)
