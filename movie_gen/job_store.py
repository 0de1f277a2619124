"""The job store in Redis: the source of truth for a job's state, its bible and each set's record."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

import redis

QUEUED, OUTLINING, GENERATING = "queued", "outlining", "generating"
COMPLETED, PARTIAL, FAILED, CANCELLED = "completed", "partial", "failed", "cancelled"
FINAL_STATES = (COMPLETED, PARTIAL, FAILED, CANCELLED)
STATES = (QUEUED, OUTLINING, GENERATING, *FINAL_STATES)
SET_PENDING, SET_RUNNING, SET_RETRYING = "pending", "running", "retrying"
SET_SUCCESS, SET_FAILED, SET_CANCELLED = "success", "failed", "cancelled"

_PREFIX = "movie_gen:job:"
_INDEX = "movie_gen:jobs"
_JSON_FIELDS = ("request", "bible", "bible_record", "retry")

# Workers write only to a job that still exists: a job whose key expired (or that Redis lost)
# must not come back as a partial hash; it is restored whole from its metadata file instead.
_HSET_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""
_HINCRBY_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 2, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""


def now_iso() -> str:
    """UTC timestamp with milliseconds, e.g. 2026-11-28T21:03:04.123Z."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(iso: str | None) -> float:
    """Seconds since the epoch of an ISO timestamp (now, if it cannot be read)."""
    try:
        return datetime.fromisoformat((iso or "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return datetime.now(timezone.utc).timestamp()


def new_job_id() -> str:
    """A random job id that is safe in URLs and file names."""
    return uuid.uuid4().hex


class JobStore:
    """Reads and writes job records; every write refreshes the record's time to live."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.redis = client
        self.ttl_s = ttl_s

    @classmethod
    def from_url(cls, url: str, ttl_s: int) -> "JobStore":
        return cls(redis.Redis.from_url(url, decode_responses=True, socket_timeout=10,
                                        socket_connect_timeout=5, health_check_interval=30), ttl_s)

    @staticmethod
    def key(job_id: str) -> str:
        return _PREFIX + job_id

    @staticmethod
    def _encode(fields: dict[str, Any]) -> dict[str, str]:
        encoded = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in fields.items()}
        encoded["updated_at"] = now_iso()
        return encoded

    def _write(self, job_id: str, fields: dict[str, Any], create: bool = False) -> bool:
        """HSET the fields and refresh the TTL; unless `create`, only if the job still exists."""
        encoded = self._encode(fields)
        if create:
            pipe = self.redis.pipeline()
            pipe.hset(self.key(job_id), mapping=encoded)
            pipe.expire(self.key(job_id), self.ttl_s)
            pipe.execute()
            return True
        flat = [item for pair in encoded.items() for item in pair]
        return bool(self.redis.eval(_HSET_IF_EXISTS, 1, self.key(job_id), self.ttl_s, *flat))

    def _transform(self, job_id: str, fields: list[str], change) -> Any:
        """Read `fields`, let `change(values)` return (new fields or None, result), write atomically.

        Optimistic: if the job changes between the read and the write, it is read again.
        """
        key = self.key(job_id)
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    values = pipe.hmget(key, fields)
                    if not pipe.exists(key):
                        pipe.reset()
                        return None
                    new_fields, result = change(values)
                    if new_fields:
                        pipe.multi()
                        pipe.hset(key, mapping=self._encode(new_fields))
                        pipe.expire(key, self.ttl_s)
                        pipe.execute()
                    else:
                        pipe.reset()
                    return result
                except redis.WatchError:
                    continue

    @staticmethod
    def _index(owner: str | None) -> str:
        return f"{_INDEX}:owner:{owner}" if owner else _INDEX

    def create(self, job_id: str, request: dict[str, Any], set_plans: list[dict[str, Any]],
               provider: str, owner: str | None = None,
               bible_record: dict[str, Any] | None = None) -> None:
        """Store a new job in state `queued` with one pending record per set."""
        created = now_iso()
        fields: dict[str, Any] = {"job_id": job_id, "state": QUEUED, "created_at": created,
                                  "request": request, "provider": provider, "owner": owner or "",
                                  "sets_total": str(len(set_plans)),
                                  "tokens_prompt": "0", "tokens_completion": "0", "llm_calls": "0"}
        for plan in set_plans:
            fields[f"set:{plan['set_number']}"] = {**plan, "status": SET_PENDING, "attempts": []}
        if bible_record:
            fields["bible_record"] = bible_record
        self._write(job_id, fields, create=True)
        score = datetime.now(timezone.utc).timestamp()
        pipe = self.redis.pipeline()
        pipe.zadd(_INDEX, {job_id: score})
        if owner:
            pipe.zadd(self._index(owner), {job_id: score})
        pipe.execute()

    def list_jobs(self, owner: str | None, state: str | None, limit: int,
                  offset: int) -> tuple[list[dict[str, Any]], int | None]:
        """Jobs, most recent first, optionally of one state; returns them and the next offset."""
        index, found, position = self._index(owner), [], offset
        names = ("job_id", "state", "created_at", "updated_at", "title", "sets_total")
        while len(found) < limit:
            ids = self.redis.zrevrange(index, position, position + 4 * limit - 1)
            if not ids:
                return found, None
            pipe = self.redis.pipeline()
            for job_id in ids:
                pipe.hmget(self.key(job_id), names)
            for job_id, values in zip(ids, pipe.execute()):
                position += 1
                if values[0] is None:
                    self.redis.zrem(index, job_id)  # its record expired
                    position -= 1
                    continue
                row = dict(zip(names, values))
                if state is None or row["state"] == state:
                    row["sets_total"] = int(row["sets_total"] or 0)
                    found.append(row)
                    if len(found) == limit:
                        break
        more = self.redis.zcard(index) > position
        return found, position if more else None

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Put back a job from its durable snapshot (the metadata file) after its key expired."""
        skip = ("sets", "segments", "token_usage", "written_at")
        fields = {k: v for k, v in snapshot.items() if k not in skip and v is not None}
        usage = snapshot.get("token_usage") or {}
        fields.update(tokens_prompt=str(usage.get("prompt_tokens", 0)),
                      tokens_completion=str(usage.get("completion_tokens", 0)),
                      llm_calls=str(usage.get("model_calls", 0)))
        for record in snapshot.get("sets", []):
            fields[f"set:{record['set_number']}"] = record
        job_id, owner = snapshot["job_id"], snapshot.get("owner") or None
        self._write(job_id, fields, create=True)
        score = parse_timestamp(snapshot.get("created_at"))
        self.redis.zadd(_INDEX, {job_id: score})
        if owner:
            self.redis.zadd(self._index(owner), {job_id: score})

    def exists(self, job_id: str) -> bool:
        return bool(self.redis.exists(self.key(job_id)))

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The whole job: scalar fields, decoded JSON fields and `sets` in set order."""
        raw = self.redis.hgetall(self.key(job_id))
        if not raw:
            return None
        job: dict[str, Any] = {}
        sets = []
        for field, value in raw.items():
            if field.startswith("set:"):
                sets.append(json.loads(value))
            elif field.startswith("segments:"):
                continue
            elif field in _JSON_FIELDS:
                job[field] = json.loads(value)
            else:
                job[field] = value
        if "job_id" not in job or "request" not in job:
            return None  # not a whole job (e.g. Redis lost it): callers fall back to the disk
        job["sets"] = sorted(sets, key=lambda s: s["set_number"])
        for name in ("sets_total", "tokens_prompt", "tokens_completion", "llm_calls"):
            job[name] = int(job.get(name, 0))
        return job

    def set_state(self, job_id: str, state: str, **extra: Any) -> None:
        """Change the job's state; a final state is announced to everyone waiting on the job."""
        self._write(job_id, {"state": state, **extra})
        if state in FINAL_STATES:
            self.redis.publish(self.key(job_id) + ":final", state)

    def advance_state(self, job_id: str, state: str) -> bool:
        """Move a running job to `state`; a job that has already ended keeps its final state."""
        def change(values: list[str | None]):
            return (None, False) if values[0] in FINAL_STATES else ({"state": state}, True)
        return bool(self._transform(job_id, ["state"], change))

    def update_record_if(self, job_id: str, field: str, statuses: tuple[str, ...],
                         **changes: Any) -> dict[str, Any] | None:
        """Apply `changes` to a record only while its status is one of `statuses` (atomic)."""
        def change(values: list[str | None]):
            record = json.loads(values[0]) if values[0] else None
            if record is None or record.get("status") not in statuses:
                return None, None
            record.update(changes)
            return {field: record}, record
        return self._transform(job_id, [field], change)

    def put_record_if_owned(self, job_id: str, field: str, record: dict[str, Any], task_id: str) -> bool:
        """Write a unit's record only while the unit belongs to task `task_id`.

        A retry gives a unit a new task id; a message of an earlier run must not overwrite it.
        """
        def change(values: list[str | None]):
            current = json.loads(values[0]) if values[0] else {}
            if current.get("task_id") not in (None, task_id):
                return None, False
            return {field: {**record, "task_id": task_id}}, True
        return bool(self._transform(job_id, [field], change))

    def save_bible_if_owned(self, job_id: str, bible: dict[str, Any], file_stem: str | None,
                            task_id: str | None) -> bool:
        """Store the bible only while the bible belongs to task `task_id` (not after a retry)."""
        def change(values: list[str | None]):
            current = json.loads(values[0]) if values[0] else {}
            if task_id is not None and current.get("task_id") not in (None, task_id):
                return None, False
            fields: dict[str, Any] = {"bible": bible, "title": bible["title"]}
            if file_stem:
                fields["file_stem"] = file_stem
            return fields, True
        saved = bool(self._transform(job_id, ["bible_record"], change))
        if saved:
            self.advance_state(job_id, GENERATING)
        return saved

    def finalize(self, job_id: str, run: int, state: str, **extra: Any) -> bool:
        """Set the final `state` unless a newer run has started; announce it to waiting clients."""
        def change(values: list[str | None]):
            if int(values[0] or 1) != run:
                return None, False
            return {"state": state, **extra}, True
        done = bool(self._transform(job_id, ["run"], change))
        if done:
            self.redis.publish(self.key(job_id) + ":final", state)
        return done

    def request_cancel(self, job_id: str) -> bool:
        """Mark a running job cancelled; False when it has already ended."""
        def change(values: list[str | None]):
            if values[0] in FINAL_STATES:
                return None, False
            return {"cancelled_at": now_iso()}, True
        return bool(self._transform(job_id, ["state"], change))

    def touch(self, job_id: str) -> None:
        """Record that the job is alive (e.g. a task waits for the rate limit)."""
        self._write(job_id, {})

    def transform(self, job_id: str, fields: list[str], change) -> Any:
        """Public form of the optimistic read-modify-write (see `_transform`)."""
        return self._transform(job_id, fields, change)

    def subscribe_final(self, job_id: str) -> Any:
        """A pub/sub subscription that receives a message when the job reaches a final state."""
        pubsub = self.redis.pubsub()
        pubsub.subscribe(self.key(job_id) + ":final")
        return pubsub

    def get_record(self, job_id: str, field: str) -> dict[str, Any] | None:
        """One JSON record of the job, e.g. `set:3` or `bible_record`."""
        raw = self.redis.hget(self.key(job_id), field)
        return json.loads(raw) if raw else None

    def put_segments(self, job_id: str, set_number: int, segments: list[dict[str, Any]]) -> None:
        self._write(job_id, {f"segments:{set_number}": segments})

    def get_segments(self, job_id: str, set_number: int) -> list[dict[str, Any]] | None:
        raw = self.redis.hget(self.key(job_id), f"segments:{set_number}")
        return json.loads(raw) if raw else None

    def add_usage(self, job_id: str, usage: dict[str, int]) -> None:
        """Add one attempt's token usage (`model_calls` calls, default 1) to the job's totals."""
        self.redis.eval(_HINCRBY_IF_EXISTS, 1, self.key(job_id), self.ttl_s,
                        "tokens_prompt", int(usage.get("prompt_tokens", 0)),
                        "tokens_completion", int(usage.get("completion_tokens", 0)),
                        "llm_calls", int(usage.get("model_calls", 1)))

    def acquire_lock(self, job_id: str, name: str, ttl_s: int) -> bool:
        """A short-lived exclusive lock on one job (e.g. one retry at a time)."""
        return bool(self.redis.set(f"{self.key(job_id)}:lock:{name}", "1", nx=True, ex=ttl_s))

    def release_lock(self, job_id: str, name: str) -> None:
        self.redis.delete(f"{self.key(job_id)}:lock:{name}")
