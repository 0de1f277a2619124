"""A job's runs: a retry starts the next run, each run sends its sets once and is ended by one
caller; a retry that waits (for the model's quota) is scheduled in `movie_gen:scheduled-retries`."""

from __future__ import annotations

from typing import Any

from movie_gen.store.job_hash import JobHash
from movie_gen.store.job_keys import LUA_PRELUDE, field_pairs
from movie_gen.store.job_model import now_iso

SCHEDULED_RETRIES = "movie_gen:scheduled-retries"

# ARGV[3] expected run, ARGV[4] '1' if a job that has not ended may start a run (it stalled),
# ARGV[5..] fields. Two retries that race: only the one that read the current run starts one.
BEGIN_RUN = LUA_PRELUDE + """
if (redis.call('HGET', KEYS[1], 'run') or '1') ~= ARGV[3] then return 0 end
if ARGV[4] ~= '1' and not FINAL[redis.call('HGET', KEYS[1], 'state')] then return 0 end
hset_pairs(KEYS[1], 5)
touch()
return 1
"""

# ARGV[3]: the run whose sets are about to be sent; 0 if they were sent already or the run is old.
SETS_SENT = LUA_PRELUDE + """
if (redis.call('HGET', KEYS[1], 'run') or '1') ~= ARGV[3] then return 0 end
if redis.call('HGET', KEYS[1], 'sets_sent') == ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'sets_sent', ARGV[3])
touch()
return 1
"""

# ARGV[3] the run to finish: 1 for the one caller that may end it (the job has not ended and no
# other caller took this run's ending), else 0.
CLAIM_FINISH = LUA_PRELUDE + """
if FINAL[redis.call('HGET', KEYS[1], 'state')] then return 0 end
if redis.call('HGET', KEYS[1], 'finishing') == ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'finishing', ARGV[3])
return 1
"""


class JobRuns(JobHash):
    """Starting, sending and ending a job's runs, and its scheduled retries."""

    def begin_run(self, job_id: str, expected_run: int, allow_running: bool, **fields: Any) -> bool:
        """Start run `expected_run + 1` (a retry) if no other run started since `expected_run`."""
        return bool(self._run(BEGIN_RUN, job_id, expected_run, "1" if allow_running else "0",
                              *field_pairs({**fields, "run": expected_run + 1})))

    def mark_sets_sent(self, job_id: str, run: int) -> bool:
        """True once per run: the caller sends that run's sets (a redelivered bible does not)."""
        return bool(self._run(SETS_SENT, job_id, run))

    def clear_sets_sent(self, job_id: str, run: int) -> None:
        """Sending the sets failed: the next delivery of the bible task sends them."""
        self.set_fields(job_id, sets_sent="")

    def claim_finish(self, job_id: str, run: int) -> bool:
        """True for the one caller that ends run `run` of a job that has not ended."""
        return bool(self._run(CLAIM_FINISH, job_id, run))

    def schedule_retry(self, job_id: str, at: float, max_retries: int) -> None:
        """Run the job's retry at `at` (epoch seconds); kept in Redis, so it survives restarts."""
        self.set_fields(job_id, retry_scheduled_at=now_iso(at), scheduled_max_retries=str(max_retries))
        self.redis.zadd(SCHEDULED_RETRIES, {job_id: at})

    def scheduled_max_retries(self, job_id: str) -> int:
        return int(self.redis.hget(self.key(job_id), "scheduled_max_retries") or 3)

    def take_due_retries(self, now: float, limit: int = 20) -> list[str]:
        """Jobs whose scheduled retry is due, each taken by exactly one caller."""
        due = self.redis.zrangebyscore(SCHEDULED_RETRIES, "-inf", now, start=0, num=limit)
        return [job_id for job_id in due if self.redis.zrem(SCHEDULED_RETRIES, job_id)]
