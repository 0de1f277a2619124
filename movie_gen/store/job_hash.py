"""The job hash: the job's state and fields, each conditional change one script; its final state
is published on `movie_gen:job:<id>:final` to everyone waiting on the job."""

from __future__ import annotations

import json
from typing import Any

from movie_gen.store.job_keys import LUA_PRELUDE, JobKeys, field_pairs
from movie_gen.store.job_model import FINAL_STATES, JobState, now_iso

# ARGV[3..]: field/value pairs of the job hash. Workers never recreate a job that Redis lost.
WRITE_JOB = LUA_PRELUDE + """
hset_pairs(KEYS[1], 3)
touch()
return 1
"""

# The job is alive (a message waits for its model-call slot); a job that has ended is left as it is.
TOUCH_IF_RUNNING = LUA_PRELUDE + """
if FINAL[redis.call('HGET', KEYS[1], 'state')] then return 0 end
touch()
return 1
"""

# ARGV[3]: the new state; a job that has already ended (or is being cancelled) keeps its state.
ADVANCE_STATE = LUA_PRELUDE + """
local current = redis.call('HGET', KEYS[1], 'state')
if FINAL[current] or current == S.cancelling then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3])
touch()
return 1
"""

# ARGV[3]: the run that ends the job; ARGV[4..]: fields. A newer run (a retry) keeps the job, and a
# job seen final never changes: only the first call of a run ends it.
FINALIZE = LUA_PRELUDE + """
if (redis.call('HGET', KEYS[1], 'run') or '1') ~= ARGV[3] then return 0 end
if FINAL[redis.call('HGET', KEYS[1], 'state')] then return 0 end
hset_pairs(KEYS[1], 4)
touch()
return 1
"""

# ARGV[3..]: fields set only while the job has not ended nor is being cancelled (e.g. cancelled_at).
IF_RUNNING = LUA_PRELUDE + """
local current = redis.call('HGET', KEYS[1], 'state')
if FINAL[current] or current == S.cancelling then return 0 end
hset_pairs(KEYS[1], 3)
touch()
return 1
"""

# ARGV[3] the reply's structured-output mode ('' none), [4..] counter / increment pairs (the
# token usage of one attempt's calls).
ADD_USAGE = LUA_PRELUDE + """
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'output_mode', ARGV[3]) end
for i = 4, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
touch()
return 1
"""


class JobHash(JobKeys):
    """The job's state and fields; every write refreshes the time to live of the job's keys."""

    def exists(self, job_id: str) -> bool:
        return bool(self.redis.exists(self.key(job_id)))

    def is_cancelled(self, job_id: str) -> bool:
        return bool(self.redis.hget(self.key(job_id), "cancelled_at"))

    def set_fields(self, job_id: str, **fields: Any) -> None:
        """Change some of the job's fields (only while the job exists)."""
        self._run(WRITE_JOB, job_id, *field_pairs(fields))

    def set_state(self, job_id: str, state: str, **extra: Any) -> None:
        """Change the job's state; a final state is announced to everyone waiting on the job."""
        self.set_fields(job_id, state=state, **extra)
        if state in FINAL_STATES:
            self.publish_final(job_id, state)

    def advance_state(self, job_id: str, state: str) -> bool:
        """Move a running job to `state`; a job that has already ended keeps its final state."""
        return bool(self._run(ADVANCE_STATE, job_id, state))

    def finalize(self, job_id: str, run: int, state: str, **extra: Any) -> bool:
        """Set the final `state` unless a newer run has started; announce it to waiting clients."""
        done = bool(self._run(FINALIZE, job_id, run, *field_pairs({"state": state, **extra})))
        if done:
            self.publish_final(job_id, state)
        return done

    def publish_final(self, job_id: str, state: str) -> None:
        self.redis.publish(self.key(job_id) + ":final", state)

    def subscribe_final(self, job_id: str) -> Any:
        """A pub/sub subscription that receives a message when the job reaches a final state."""
        pubsub = self.redis.pubsub()
        pubsub.subscribe(self.key(job_id) + ":final")
        return pubsub

    def request_cancel(self, job_id: str) -> bool:
        """Mark a running job `cancelling`; False when it has already ended or is being cancelled."""
        return bool(self._run(IF_RUNNING, job_id, "cancelled_at", now_iso(), "state", JobState.CANCELLING))

    def stop_for_quota(self, job_id: str, not_before: str, message: str) -> None:
        """The model's quota is spent: the job's remaining units fail without a call."""
        self.set_fields(job_id, quota_not_before=not_before, quota_error=message)

    def touch(self, job_id: str) -> None:
        """Record that the job is alive (e.g. a task waits for the rate limit); not once it ended."""
        self._run(TOUCH_IF_RUNNING, job_id)

    def add_usage(self, job_id: str, usage: dict[str, int], mode: str | None = None) -> None:
        """Add one attempt's token usage (`model_calls` calls, default 1) to the job's totals, and
        the structured-output mode its reply used."""
        self._run(ADD_USAGE, job_id, mode or "", "tokens_prompt", int(usage.get("prompt_tokens", 0)),
                  "tokens_completion", int(usage.get("completion_tokens", 0)),
                  "llm_calls", int(usage.get("model_calls", 1)))

    def add_warning(self, job_id: str, warning: str) -> None:
        """Something the user should know that did not stop the job (a metadata write failed)."""
        warnings = json.loads(self.redis.hget(self.key(job_id), "warnings") or "[]")
        if warning not in warnings:
            self.set_fields(job_id, warnings=json.dumps([*warnings, warning][-10:]))
