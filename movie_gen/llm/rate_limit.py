"""One rate limit on model calls for every worker process: each call reserves its start time.

`limits` (which parses LLM_RATE_LIMIT here) answers "may a call start now?"; asked by many waiting
tasks, that makes them all wake at the same instant and ask again. A reservation instead gives each
attempt its own slot in one atomic step (a Lua script over the last N slots: a moving window of N
calls), so a task waits once, for its own slot, and no message is sent again to ask.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import limits
import redis

from movie_gen.config.settings import SettingsError

_KEY = "movie_gen:llm-slots"
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local slot = now
if redis.call('LLEN', KEYS[1]) >= n then
  local nth = tonumber(redis.call('LINDEX', KEYS[1], -n))
  if nth + window > slot then slot = nth + window end
end
redis.call('RPUSH', KEYS[1], slot)
redis.call('LTRIM', KEYS[1], -n, -1)
redis.call('PEXPIRE', KEYS[1], slot - now + window + 1000)
return {slot, now}
"""


@dataclass(frozen=True)
class Slot:
    """A reserved start time for one model call (Redis clock, milliseconds) and the wait until it."""

    at_ms: int
    wait_s: float


class LLMRateLimiter:
    """Hands out start times so that no window of the limit holds more calls than it allows."""

    def __init__(self, client: redis.Redis, rate: str) -> None:
        try:
            limit = limits.parse(rate)
        except ValueError:
            raise SettingsError(f"LLM_RATE_LIMIT must be like '30/minute', got {rate!r}") from None
        self.amount = limit.amount
        self.window_ms = int(limit.get_expiry() * 1000)
        self._reserve = client.register_script(_RESERVE)
        self._time = client.time

    def reserve(self) -> Slot:
        """Reserve the earliest free start time (counted at once, whether or not the call happens)."""
        at_ms, now_ms = self._reserve(keys=[_KEY], args=[self.amount, self.window_ms])
        return Slot(int(at_ms), max(0.0, (int(at_ms) - int(now_ms)) / 1000))

    def pace(self) -> None:
        """Reserve a slot and sleep until it (a further call within an attempt)."""
        time.sleep(self.reserve().wait_s)

    def wait_for(self, at_ms: int) -> float:
        """Seconds from now until an earlier reservation's start time (0 when it has passed)."""
        seconds, micros = self._time()
        return max(0.0, (at_ms - (seconds * 1000 + micros // 1000)) / 1000)
