"""The job store in Redis: the source of truth for a job's state, its bible and each unit's record.

One object over the job's structures, each in its own module with its Lua beside it: the job
hash (`job_hash`), its runs (`job_runs`), its units and status line (`units`), the job as a whole
(`job_records`) and the job index (`job_index`); `job_keys` names the keys, `job_model` the states.
"""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from movie_gen.store.job_records import JobRecords
from movie_gen.store.job_runs import JobRuns
from movie_gen.store.units import Units


class JobStore(JobRecords, JobRuns, Units):
    """Reads and writes job records; every write refreshes the time to live of the job's keys."""

    @classmethod
    def from_url(cls, url: str, ttl_s: int, patient: bool = False,
                 max_connections: int | None = None) -> "JobStore":
        """A store on `url`. A `patient` one (the workers') rides out a Redis restart or a dropped
        connection of up to about 30 s: redis-py retries each command with exponential backoff,
        so an attempt's model reply is written once Redis is back instead of being lost.
        With `max_connections` (the web's), a command waits for a free connection of that many."""
        retry = Retry(ExponentialBackoff(cap=5, base=0.5), 9 if patient else 1)
        options = dict(decode_responses=True, socket_timeout=10, socket_connect_timeout=5,
                       health_check_interval=30, retry=retry,
                       retry_on_error=[redis.ConnectionError, redis.TimeoutError])
        if max_connections:
            pool = redis.BlockingConnectionPool.from_url(url, max_connections=max_connections,
                                                         timeout=10, **options)
            return cls(redis.Redis(connection_pool=pool), ttl_s)
        return cls(redis.Redis.from_url(url, **options), ttl_s)
