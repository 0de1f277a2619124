"""Idempotency-Key: the same key with the same body returns the same job and does no new work."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Callable

import redis

ABANDONED_AFTER_S = 30

# Compare-and-set: replace the claim only if it is still the abandoned one we read, so that of two
# concurrent takeovers exactly one wins (the other then finds the winner's claim and replays it).
_TAKE_OVER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
# Compare-and-delete: forget the claim only while it is still this request's.
_RELEASE = """
local raw = redis.call('GET', KEYS[1])
if raw and cjson.decode(raw)['job_id'] == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class IdempotencyConflict(Exception):
    """The key was used before with another body."""


class IdempotencyKeys:
    """Claims of (owner, endpoint, key) → (hash of the body, job id), kept in Redis for a while."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        self._take_over = client.register_script(_TAKE_OVER)
        self._release = client.register_script(_RELEASE)

    @staticmethod
    def _name(owner: str | None, scope: str, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"movie_gen:idempotency:{owner or '-'}:{scope}:{digest}"

    @staticmethod
    def body_hash(body: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()

    def claim(self, owner: str | None, scope: str, key: str, body: dict[str, Any], job_id: str,
              job_exists: Callable[[str], bool] | None = None) -> tuple[str, bool]:
        """(job id, True) when this request is the first with the key; (earlier job id, False) on replay.

        A claim whose job never came to exist (its request died half-way) is taken over after
        ABANDONED_AFTER_S, so that the key does not point at nothing for a whole day.
        """
        name, digest = self._name(owner, scope, key), self.body_hash(body)
        claim = json.dumps({"body": digest, "job_id": job_id, "at": time.time()})
        if self.redis.set(name, claim, nx=True, ex=self.ttl_s):
            return job_id, True
        raw = self.redis.get(name)
        if raw is None:  # expired between the two calls: claim again
            return self.claim(owner, scope, key, body, job_id, job_exists)
        earlier = json.loads(raw)
        if earlier["body"] != digest:
            raise IdempotencyConflict("this Idempotency-Key was used with another request body")
        abandoned = time.time() - earlier.get("at", 0) > ABANDONED_AFTER_S
        if job_exists is not None and abandoned and not job_exists(earlier["job_id"]):
            if self._take_over(keys=[name], args=[raw, claim, self.ttl_s]):
                return job_id, True
            return self.claim(owner, scope, key, body, job_id, job_exists)
        return earlier["job_id"], False

    def release(self, owner: str | None, scope: str, key: str, job_id: str) -> None:
        """Forget this request's claim (its request failed), so that the client may try the key again."""
        self._release(keys=[self._name(owner, scope, key)], args=[job_id])
