"""Idempotency-Key: the same key with the same body returns the same job and does no new work."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import redis


class IdempotencyConflict(Exception):
    """The key was used before with another body."""


class IdempotencyKeys:
    """Claims of (owner, endpoint, key) → (hash of the body, job id), kept in Redis for a while."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.redis = client
        self.ttl_s = ttl_s

    @staticmethod
    def _name(owner: str | None, scope: str, key: str) -> str:
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        return f"movie_gen:idempotency:{owner or '-'}:{scope}:{digest}"

    @staticmethod
    def body_hash(body: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()

    def claim(self, owner: str | None, scope: str, key: str, body: dict[str, Any],
              job_id: str) -> tuple[str, bool]:
        """(job id, True) when this request is the first with the key; (earlier job id, False) on replay."""
        name, digest = self._name(owner, scope, key), self.body_hash(body)
        if self.redis.set(name, json.dumps({"body": digest, "job_id": job_id}), nx=True, ex=self.ttl_s):
            return job_id, True
        raw = self.redis.get(name)
        if raw is None:  # expired between the two calls: claim again
            return self.claim(owner, scope, key, body, job_id)
        earlier = json.loads(raw)
        if earlier["body"] != digest:
            raise IdempotencyConflict("this Idempotency-Key was used with another request body")
        return earlier["job_id"], False

    def release(self, owner: str | None, scope: str, key: str) -> None:
        """Forget a claim whose request failed, so that the client may try again with the key."""
        self.redis.delete(self._name(owner, scope, key))
