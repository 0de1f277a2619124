"""Long-polls: the wait on a job (woken by the process's event hub), and the cap on the long-polls
one client holds at once (LONG_POLLS_PER_KEY), counted in Redis."""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from typing import Any, Iterator

from movie_gen.jobs.submit import SETS_PAGE
from movie_gen.store.job_model import FINAL_STATES

from ..services import Services
from .event_hub import EventHub

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


def wait_for_final(services: Services, hub: EventHub, job_id: str, timeout_s: float) -> dict[str, Any] | None:
    """The job once it reaches a final state, or as it is when `timeout_s` passes.

    It sleeps until the hub hears that the job ended (it listens before the first read, so no
    final message is missed) and reads the job at the start, when woken, and when the time is up.
    """
    deadline = time.monotonic() + timeout_s
    with hub.final_waiter(job_id) as woken:
        job = services.store.get_page(job_id, 1, SETS_PAGE)
        while job is not None and job["state"] not in FINAL_STATES:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            woken.wait(left)
            woken.clear()
            job = services.store.get_page(job_id, 1, SETS_PAGE)
        return job
