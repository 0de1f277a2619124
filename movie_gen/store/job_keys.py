"""A job's keys in Redis, and the Lua prelude that every conditional write of them runs first.

A job is five keys that live and expire together:

- `movie_gen:job:<id>`: the job's scalar fields (state, run, request, the bible without its
  synopses, token counters);
- `…:units`: per unit (`bible` or a set number `n`), the small fields `n:status`, `n:task_id`,
  `n:claim`, `n:delivery` and `n:record` (JSON: plan, attempt history, error, file path);
- `…:synopses`: one field per set synopsis;
- `…:segments`: one field per successful set's segments;
- `…:status`: the status line, three characters per set (see `units`).

A set task reads and writes only its own fields (HMGET, and one Lua script per conditional
write), so its cost does not grow with the number of sets. Every script takes the five keys (a
sixth: a unit's lease) and ARGV[1] = time to live, ARGV[2] = now (ISO); it refreshes the time to
live of the five keys and tells the web processes that the job changed.
"""

from __future__ import annotations

import json
from typing import Any

import redis
from redis.commands.core import Script

from movie_gen.store.job_model import lua_constants, now_iso

PREFIX = "movie_gen:job:"

LUA_PRELUDE = lua_constants() + """
local function touch()
  redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
  for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ARGV[1]) end
  -- every change bumps the job's version and tells the web processes (their event streams)
  redis.call('PUBLISH', KEYS[1] .. ':changed', redis.call('HINCRBY', KEYS[1], 'version', 1))
end
local function hset_pairs(key, first)
  for i = first, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
"""


class JobKeys:
    """The keys of each job, and the store's scripts run on them."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        self._scripts: dict[str, Script] = {}

    @staticmethod
    def key(job_id: str) -> str:
        return PREFIX + job_id

    def keys(self, job_id: str) -> list[str]:
        """The job hash, its units, its synopses, its segments and its status line."""
        base = self.key(job_id)
        return [base, f"{base}:units", f"{base}:synopses", f"{base}:segments", f"{base}:status"]

    def _run(self, script: str, job_id: str, *args: Any, lease_key: str | None = None) -> int:
        """Run a script (its Lua text) on the job's keys and `lease_key`; what it returns."""
        if script not in self._scripts:
            self._scripts[script] = self.redis.register_script(script)
        keys = [*self.keys(job_id), lease_key or self.key(job_id)]
        return int(self._scripts[script](keys=keys, args=[self.ttl_s, now_iso(), *map(as_text, args)]))


def as_text(value: Any) -> str:
    """A field's value as stored: text as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def field_pairs(fields: dict[str, Any]) -> list[Any]:
    """Fields as the flat name / value list that the scripts' ARGV takes."""
    return [item for pair in fields.items() for item in pair]
