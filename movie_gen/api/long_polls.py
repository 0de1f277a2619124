"""A cap on the long-polls one client holds at once (LONG_POLLS_PER_KEY), counted in Redis."""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from typing import Iterator

from ..services import Services

# Slots are members of a sorted set scored by when they lapse, so that a crashed process's slots
# free themselves; taking one is a single script, so two processes never both take the last one.
_TAKE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""
_MARGIN_S = 30


@contextmanager
def long_poll_slot(services: Services, client: str, seconds: float) -> Iterator[bool]:
    """Yields True while this request holds one of the client's long-poll slots, False if none is free."""
    redis = services.store.redis
    name, token, now = f"movie_gen:long_polls:{client}", uuid.uuid4().hex, time.time()
    lapse = now + seconds + _MARGIN_S
    taken = bool(redis.eval(_TAKE, 1, name, now, lapse, services.settings.long_polls_per_key, token,
                            int(seconds + _MARGIN_S) + 1))
    try:
        yield taken
    finally:
        if taken:
            redis.zrem(name, token)
