"""One rate limit on model calls for every worker process, counted in Redis with `limits`."""

from __future__ import annotations

import time

import limits
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from .settings import SettingsError

_KEY = "llm-calls"


class LLMRateLimiter:
    """Admits a model call now, or says how many seconds until one may start."""

    def __init__(self, redis_url: str, rate: str) -> None:
        try:
            self.limit = limits.parse(rate)
        except ValueError:
            raise SettingsError(f"LLM_RATE_LIMIT must be like '30/minute', got {rate!r}") from None
        self.limiter = MovingWindowRateLimiter(storage_from_string(redis_url))

    def try_acquire(self) -> float:
        """0.0 when the call may start now (and it is counted); else the seconds to wait."""
        if self.limiter.hit(self.limit, "movie_gen", _KEY):
            return 0.0
        stats = self.limiter.get_window_stats(self.limit, "movie_gen", _KEY)
        return max(0.05, stats.reset_time - time.time())
