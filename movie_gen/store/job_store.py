"""The job store in Redis: the source of truth for a job's state, its bible and each unit's record.

A job is four keys that live and expire together:

- `movie_gen:job:<id>`: the job's scalar fields (state, run, request, the bible without its
  synopses, token counters);
- `…:units`: per unit (`bible` or a set number `n`), the small fields `n:status`, `n:task_id`,
  `n:attempts` and `n:record` (JSON: plan, attempt history, error, file path);
- `…:synopses`: one field per set synopsis;
- `…:segments`: one field per successful set's segments.

A set task reads and writes only its own fields (HMGET, and one Lua script per conditional
write), so its cost does not grow with the number of sets.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from movie_gen.store import store_scripts
from movie_gen.store.records import (  # noqa: F401  (the states are part of the store's vocabulary)
    BIBLE_UNIT,
    CANCELLED,
    CANCELLING,
    COMPLETED,
    FAILED,
    FINAL_STATES,
    GENERATING,
    OUTLINING,
    PARTIAL,
    QUEUED,
    SET_CANCELLED,
    SET_FAILED,
    SET_PENDING,
    SET_RETRYING,
    SET_RUNNING,
    SET_SUCCESS,
    STATES,
    decode_unit,
    encode_unit,
    new_job_id,
    now_iso,
    parse_timestamp,
    read_status_line,
    status_line,
)

_PREFIX = "movie_gen:job:"
SCHEDULED_RETRIES = "movie_gen:scheduled-retries"
_INDEX = "movie_gen:jobs"
_JSON_FIELDS = ("request", "bible", "retry", "warnings")
_INT_FIELDS = ("sets_total", "tokens_prompt", "tokens_completion", "llm_calls")
UNIT_FIELDS = ("status", "task_id", "record")  # of each unit in the units hash


class JobStore:
    """Reads and writes job records; every write refreshes the time to live of the job's keys."""

    def __init__(self, client: redis.Redis, ttl_s: int) -> None:
        self.redis = client
        self.ttl_s = ttl_s
        self._scripts = {name: client.register_script(getattr(store_scripts, name))
                         for name in ("WRITE_JOB", "ADVANCE_STATE", "FINALIZE", "IF_RUNNING",
                                      "BEGIN_RUN", "UNIT_OWNED_WRITE", "UNIT_CAS", "SAVE_BIBLE",
                                      "ADD_USAGE", "SETS_SENT", "WRITE_UNIT_FIELD", "CLAIM_ATTEMPT",
                                      "CLAIM_FINISH", "TOUCH_IF_RUNNING")}

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

    @staticmethod
    def key(job_id: str) -> str:
        return _PREFIX + job_id

    def keys(self, job_id: str) -> list[str]:
        """The job hash, its units, its synopses, its segments and its status line."""
        base = self.key(job_id)
        return [base, f"{base}:units", f"{base}:synopses", f"{base}:segments", f"{base}:status"]

    def _run(self, script: str, job_id: str, *args: Any) -> bool:
        values = [self.ttl_s, now_iso(), *(_text(a) for a in args)]
        return bool(self._scripts[script](keys=self.keys(job_id), args=values))

    @staticmethod
    def _index(owner: str | None) -> str:
        return f"{_INDEX}:owner:{owner}" if owner else _INDEX

    # --- creating and restoring ------------------------------------------------------------

    def create(self, job_id: str, request: dict[str, Any], set_plans: list[dict[str, Any]],
               provider: str, owner: str | None = None,
               bible_record: dict[str, Any] | None = None) -> None:
        """Store a new job in state `queued` with one pending record per set."""
        now = now_iso()
        fields = {"job_id": job_id, "state": "queued", "created_at": now, "updated_at": now,
                  "request": request, "provider": provider, "owner": owner or "",
                  "sets_total": len(set_plans), "tokens_prompt": 0, "tokens_completion": 0,
                  "llm_calls": 0, "run": 1}
        units = [{**plan, "status": SET_PENDING, "attempts": []} for plan in set_plans]
        units.append({"status": SET_PENDING, "attempts": [], **(bible_record or {})})
        self._put_whole(job_id, fields, units, synopses=[])
        self._add_to_index(job_id, owner, datetime.now(timezone.utc).timestamp())

    def restore(self, snapshot: dict[str, Any]) -> None:
        """Put back a job from its durable snapshot (the metadata file) after Redis lost it."""
        skip = ("sets", "segments", "token_usage", "written_at", "bible_record", "bible")
        fields = {k: v for k, v in snapshot.items() if k not in skip and v is not None}
        usage = snapshot.get("token_usage") or {}
        fields.update(tokens_prompt=usage.get("prompt_tokens", 0),
                      tokens_completion=usage.get("completion_tokens", 0),
                      llm_calls=usage.get("model_calls", 0), updated_at=now_iso())
        bible = snapshot.get("bible")
        synopses = []
        if bible:
            fields["bible"] = {k: v for k, v in bible.items() if k != "set_synopses"}
            synopses = bible.get("set_synopses", [])
        units = [*snapshot.get("sets", []), snapshot.get("bible_record") or {"status": SET_PENDING}]
        self._put_whole(snapshot["job_id"], fields, units, synopses)
        self._add_to_index(snapshot["job_id"], snapshot.get("owner") or None,
                           parse_timestamp(snapshot.get("created_at")))

    def _put_whole(self, job_id: str, fields: dict[str, Any], units: list[dict[str, Any]],
                   synopses: list[dict[str, Any]]) -> None:
        keys = self.keys(job_id)
        unit_fields: dict[str, str] = {}
        for record in units:
            name = str(record["set_number"]) if "set_number" in record else BIBLE_UNIT
            unit_fields.update(encode_unit(name, record))
        pipe = self.redis.pipeline()  # MULTI/EXEC: readers never see half a job
        pipe.delete(*keys)
        pipe.hset(keys[0], mapping={k: _text(v) for k, v in fields.items()})
        pipe.hset(keys[1], mapping=unit_fields)
        pipe.set(keys[4], status_line(units))
        if synopses:
            pipe.hset(keys[2], mapping={str(s["set_number"]): json.dumps(s) for s in synopses})
        for key in keys:
            pipe.expire(key, self.ttl_s)
        pipe.execute()

    def _add_to_index(self, job_id: str, owner: str | None, score: float) -> None:
        pipe = self.redis.pipeline()
        pipe.zadd(_INDEX, {job_id: score})
        if owner:
            pipe.zadd(self._index(owner), {job_id: score})
        pipe.execute()

    # --- reading -----------------------------------------------------------------------------

    def exists(self, job_id: str) -> bool:
        return bool(self.redis.exists(self.key(job_id)))

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The whole job: fields, the bible with every synopsis, `bible_record` and every set."""
        keys = self.keys(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys[0])
        pipe.hgetall(keys[1])
        pipe.hgetall(keys[2])
        raw, units, synopses = pipe.execute()
        job = _decode_job(raw, units)
        if job is None:
            return None
        records = {}
        for field in units:
            name, _, part = field.partition(":")
            if part == "record":
                records[name] = decode_unit(units, name)
        job["bible_record"] = records.pop(BIBLE_UNIT, {"status": SET_PENDING, "attempts": []})
        job["sets"] = sorted(records.values(), key=lambda r: r["set_number"])
        if job.get("bible"):
            job["bible"]["set_synopses"] = sorted((json.loads(s) for s in synopses.values()),
                                                  key=lambda s: s["set_number"])
        return job

    def get_page(self, job_id: str, first_set: int, limit: int) -> dict[str, Any] | None:
        """The job's fields, every set's status and attempt count, and the records of one page.

        The statuses come from the status line (one GET); the bible without its synopses: this
        read does not grow with the story beyond three bytes a set.
        """
        keys = self.keys(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(keys[0])
        pipe.get(keys[4])
        raw, line = pipe.execute()
        if not raw:
            return None
        total = int(raw.get("sets_total") or 0)
        numbers = list(range(first_set, min(total, first_set + limit - 1) + 1))
        names = [f"{u}:{part}" for u in [*map(str, numbers), BIBLE_UNIT] for part in UNIT_FIELDS]
        units = dict(zip(names, self.redis.hmget(keys[1], names)))
        job = _decode_job(raw, {k: v for k, v in units.items() if v is not None})
        if job is None or units.get(f"{BIBLE_UNIT}:record") is None or line is None:
            return None
        job["bible_record"] = decode_unit(units, BIBLE_UNIT)
        job["sets"] = [decode_unit(units, str(n)) for n in numbers if units.get(f"{n}:record")]
        job["set_statuses"], job["set_attempts"] = read_status_line(line, total)
        return job

    def unit_context(self, job_id: str, set_number: int | None) -> dict[str, Any] | None:
        """What one attempt of a unit needs, in one round trip: job fields, its record, synopses."""
        keys = self.keys(job_id)
        unit = BIBLE_UNIT if set_number is None else str(set_number)
        names = ["job_id", "state", "run", "request", "bible", "title", "file_stem", "sets_total",
                 "cancelled_at", "max_retries", "quota_not_before", "quota_error"]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(keys[0], names)
        pipe.hmget(keys[1], [f"{unit}:{p}" for p in UNIT_FIELDS])
        neighbours = [] if set_number is None else [str(n) for n in (set_number - 1, set_number,
                                                                     set_number + 1)]
        pipe.hmget(keys[2], neighbours or ["-"])
        fields, unit_values, synopses = pipe.execute()
        raw = {k: v for k, v in zip(names, fields) if v is not None}
        units = dict(zip([f"{unit}:{p}" for p in UNIT_FIELDS], unit_values))
        job = _decode_job(raw, {k: v for k, v in units.items() if v is not None})
        if job is None or units[f"{unit}:record"] is None:
            return None
        job["record"] = decode_unit(units, unit)
        if job.get("bible"):
            job["bible"]["set_synopses"] = [json.loads(s) for s in synopses if s]
            job["bible"]["sets_total"] = job["sets_total"]
        return job

    def get_record(self, job_id: str, set_number: int | None) -> dict[str, Any] | None:
        """One unit's record (`None` for the bible)."""
        unit = BIBLE_UNIT if set_number is None else str(set_number)
        names = [f"{unit}:{p}" for p in UNIT_FIELDS]
        units = dict(zip(names, self.redis.hmget(self.keys(job_id)[1], names)))
        return decode_unit(units, unit) if units[f"{unit}:record"] else None

    def set_task_ids(self, job_id: str) -> dict[int, str]:
        """Each set's current task id (read once per run, when the sets are sent)."""
        total = int(self.redis.hget(self.key(job_id), "sets_total") or 0)
        ids = self.redis.hmget(self.keys(job_id)[1], [f"{n}:task_id" for n in range(1, total + 1)])
        return {n: task_id for n, task_id in enumerate(ids, start=1) if task_id}

    def all_segments(self, job_id: str) -> dict[int, list[dict[str, Any]]]:
        """Every stored set's segments, by set number (one read, for the assembled script)."""
        raw = self.redis.hgetall(self.keys(job_id)[3])
        return {int(n): json.loads(v) for n, v in raw.items()}

    def list_jobs(self, owner: str | None, state: str | None, limit: int,
                  cursor: tuple[float, str] | None) -> tuple[list[dict[str, Any]], tuple[float, str] | None]:
        """Jobs, most recent first, optionally of one state, after `cursor` (score, job id).

        The cursor is a position in the index, not an offset: jobs created between two pages
        neither repeat nor push others out of sight.
        """
        index, found = self._index(owner), []
        names = ("job_id", "state", "created_at", "updated_at", "title", "sets_total")
        top = "+inf" if cursor is None else repr(cursor[0])
        while len(found) < limit:
            rows = self.redis.zrevrangebyscore(index, top, "-inf", start=0, num=4 * limit + 1,
                                               withscores=True)
            if cursor is not None:  # equal scores come in reverse id order: skip up to the cursor
                rows = [(m, s) for m, s in rows if s < cursor[0] or m < cursor[1]]
            if not rows:
                return found, None
            pipe = self.redis.pipeline(transaction=False)
            for job_id, _ in rows:
                pipe.hmget(self.key(job_id), names)
            for (job_id, score), values in zip(rows, pipe.execute()):
                cursor = (score, job_id)
                if values[0] is None:
                    self.redis.zrem(index, job_id)  # its record expired
                    continue
                row = dict(zip(names, values))
                if state is None or row["state"] == state:
                    row["sets_total"] = int(row["sets_total"] or 0)
                    found.append(row)
                    if len(found) == limit:
                        break
            top = repr(cursor[0])
        rest = self.redis.zrevrangebyscore(index, top, "-inf", start=0, num=limit + 1, withscores=True)
        more = any(s < cursor[0] or m < cursor[1] for m, s in rest)
        return found, cursor if more else None

    # --- job-level writes --------------------------------------------------------------------

    def set_state(self, job_id: str, state: str, **extra: Any) -> None:
        """Change the job's state; a final state is announced to everyone waiting on the job."""
        self._run("WRITE_JOB", job_id, *_pairs({"state": state, **extra}))
        if state in FINAL_STATES:
            self.publish_final(job_id, state)

    def advance_state(self, job_id: str, state: str) -> bool:
        """Move a running job to `state`; a job that has already ended keeps its final state."""
        return self._run("ADVANCE_STATE", job_id, state)

    def claim_finish(self, job_id: str, run: int) -> bool:
        """True for the one caller that ends run `run` of a job that has not ended."""
        return self._run("CLAIM_FINISH", job_id, run)

    def running_units(self, job_id: str) -> int:
        """How many of the job's units (its sets and its bible) are running now."""
        keys = self.keys(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys[4])
        pipe.hget(keys[1], f"{BIBLE_UNIT}:status")
        line, bible = pipe.execute()
        return (line or "")[::3].count("r") + (bible == SET_RUNNING)

    def finalize(self, job_id: str, run: int, state: str, **extra: Any) -> bool:
        """Set the final `state` unless a newer run has started; announce it to waiting clients."""
        done = self._run("FINALIZE", job_id, run, *_pairs({"state": state, **extra}))
        if done:
            self.publish_final(job_id, state)
        return done

    def publish_final(self, job_id: str, state: str) -> None:
        self.redis.publish(self.key(job_id) + ":final", state)

    def request_cancel(self, job_id: str) -> bool:
        """Mark a running job `cancelling`; False when it has already ended or is being cancelled."""
        return self._run("IF_RUNNING", job_id, "cancelled_at", now_iso(), "state", CANCELLING)

    def begin_run(self, job_id: str, expected_run: int, allow_running: bool, **fields: Any) -> bool:
        """Start run `expected_run + 1` (a retry) if no other run started since `expected_run`."""
        return self._run("BEGIN_RUN", job_id, expected_run, "1" if allow_running else "0",
                         *_pairs({**fields, "run": expected_run + 1}))

    def mark_sets_sent(self, job_id: str, run: int) -> bool:
        """True once per run: the caller sends that run's sets (a redelivered bible does not)."""
        return self._run("SETS_SENT", job_id, run)

    def clear_sets_sent(self, job_id: str, run: int) -> None:
        """Sending the sets failed: the next delivery of the bible task sends them."""
        self._run("WRITE_JOB", job_id, "sets_sent", "")

    def is_cancelled(self, job_id: str) -> bool:
        return bool(self.redis.hget(self.key(job_id), "cancelled_at"))

    def stop_for_quota(self, job_id: str, not_before: str, message: str) -> None:
        """The model's quota is spent: the job's remaining units fail without a call."""
        self._run("WRITE_JOB", job_id, "quota_not_before", not_before, "quota_error", message)

    def schedule_retry(self, job_id: str, at: float, max_retries: int) -> None:
        """Run the job's retry at `at` (epoch seconds); kept in Redis, so it survives restarts."""
        self._run("WRITE_JOB", job_id, "retry_scheduled_at", now_iso(at), "scheduled_max_retries",
                  str(max_retries))
        self.redis.zadd(SCHEDULED_RETRIES, {job_id: at})

    def scheduled_max_retries(self, job_id: str) -> int:
        return int(self.redis.hget(self.key(job_id), "scheduled_max_retries") or 3)

    def set_fields(self, job_id: str, **fields: Any) -> None:
        """Change some of the job's fields (only while the job exists)."""
        self._run("WRITE_JOB", job_id, *_pairs(fields))

    def take_due_retries(self, now: float, limit: int = 20) -> list[str]:
        """Jobs whose scheduled retry is due, each taken by exactly one caller."""
        due = self.redis.zrangebyscore(SCHEDULED_RETRIES, "-inf", now, start=0, num=limit)
        return [job_id for job_id in due if self.redis.zrem(SCHEDULED_RETRIES, job_id)]

    def touch(self, job_id: str) -> None:
        """Record that the job is alive (e.g. a task waits for the rate limit); not once it ended."""
        self._run("TOUCH_IF_RUNNING", job_id)

    def add_usage(self, job_id: str, usage: dict[str, int], mode: str | None = None) -> None:
        """Add one attempt's token usage (`model_calls` calls, default 1) to the job's totals, and
        the structured-output mode its reply used."""
        self._run("ADD_USAGE", job_id, mode or "", "tokens_prompt", int(usage.get("prompt_tokens", 0)),
                  "tokens_completion", int(usage.get("completion_tokens", 0)),
                  "llm_calls", int(usage.get("model_calls", 1)))

    def save_bible_if_owned(self, job_id: str, bible: dict[str, Any], file_stem: str | None,
                            task_id: str | None, lease: tuple[str, str] | None = None) -> int:
        """Store the bible only while the bible unit belongs to task `task_id` (not after a retry)
        and, with `lease` (key, token), only while that lease is held: 1, else 0 or -1 (lease)."""
        core = {k: v for k, v in bible.items() if k != "set_synopses"}
        synopses = [item for s in bible["set_synopses"] for item in (s["set_number"], json.dumps(s))]
        lease_key, token = lease or (self.keys(job_id)[0], "")
        args = [self.ttl_s, now_iso(), task_id or "", json.dumps(core), bible["title"], file_stem or "",
                token, *(_text(a) for a in synopses)]
        return int(self._scripts["SAVE_BIBLE"](keys=[*self.keys(job_id), lease_key], args=args))

    # --- unit writes -------------------------------------------------------------------------

    def put_unit_if_owned(self, job_id: str, set_number: int | None, record: dict[str, Any],
                          task_id: str, segments: list[dict[str, Any]] | None = None,
                          lease: tuple[str, str] | None = None) -> int:
        """Write a unit's record (and a set's segments) only while the unit belongs to `task_id`.

        With `lease` (key, token), only while that lease is held; never once the job has ended.
        Returns 1 when written; 0 when the unit is another task's (or the job is gone), -1 when the
        lease is not held, -2 when the job has ended.
        """
        unit = BIBLE_UNIT if set_number is None else str(set_number)
        body = {k: v for k, v in record.items() if k not in ("status", "task_id")}
        lease_key, token = lease or (self.keys(job_id)[0], "")
        args = [self.ttl_s, now_iso(), unit, task_id, record["status"], len(record.get("attempts", [])),
                json.dumps(body), json.dumps(segments) if segments is not None else "", token]
        return int(self._scripts["UNIT_OWNED_WRITE"](keys=[*self.keys(job_id), lease_key], args=args))

    def claim_attempt(self, job_id: str, set_number: int | None, record: dict[str, Any],
                      task_id: str, run: int, attempt: int, lease: tuple[str, str]) -> int:
        """Start attempt `attempt` of run `run` by claiming its number (see CLAIM_ATTEMPT):
        1 claimed, 2 a lost attempt taken over, 0 nothing to claim, -1 lease not held, -2 the
        job has ended, -3 it is being cancelled."""
        unit = BIBLE_UNIT if set_number is None else str(set_number)
        body = {k: v for k, v in record.items() if k not in ("status", "task_id")}
        args = [self.ttl_s, now_iso(), unit, task_id, run, attempt, json.dumps(body), lease[1],
                len(record.get("attempts", []))]
        return int(self._scripts["CLAIM_ATTEMPT"](keys=[*self.keys(job_id), lease[0]], args=args))

    def put_delivery(self, job_id: str, set_number: int | None, options: dict[str, Any]) -> None:
        """How to send the unit's message again (task id, chord, retries), for the recovery check."""
        unit = BIBLE_UNIT if set_number is None else str(set_number)
        self._run("WRITE_UNIT_FIELD", job_id, f"{unit}:delivery", json.dumps(options))

    def get_delivery(self, job_id: str, set_number: int | None) -> dict[str, Any] | None:
        unit = BIBLE_UNIT if set_number is None else str(set_number)
        raw = self.redis.hget(self.keys(job_id)[1], f"{unit}:delivery")
        return json.loads(raw) if raw else None

    def add_warning(self, job_id: str, warning: str) -> None:
        """Something the user should know that did not stop the job (a metadata write failed)."""
        warnings = json.loads(self.redis.hget(self.key(job_id), "warnings") or "[]")
        if warning not in warnings:
            self._run("WRITE_JOB", job_id, "warnings", json.dumps([*warnings, warning][-10:]))

    def update_unit_if(self, job_id: str, set_number: int | None, statuses: Iterable[str],
                       status: str, record: dict[str, Any] | None = None,
                       expected: dict[str, Any] | None = None, task_id: str | None = None) -> bool:
        """Change a unit's status (and record, task id) only while its status is one of `statuses`.

        With `expected`, only if its record is still exactly that one (compare-and-set).
        """
        unit = BIBLE_UNIT if set_number is None else str(set_number)
        strip = (lambda r: {k: v for k, v in r.items() if k not in ("status", "task_id")})
        return self._run("UNIT_CAS", job_id, unit, " ".join(statuses), status,
                         json.dumps(strip(record)) if record is not None else "",
                         json.dumps(strip(expected)) if expected is not None else "", task_id or "")

    def subscribe_final(self, job_id: str) -> Any:
        """A pub/sub subscription that receives a message when the job reaches a final state."""
        pubsub = self.redis.pubsub()
        pubsub.subscribe(self.key(job_id) + ":final")
        return pubsub


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _pairs(fields: dict[str, Any]) -> list[Any]:
    return [item for pair in fields.items() for item in pair]


def _decode_job(raw: dict[str, str], units: dict[str, str]) -> dict[str, Any] | None:
    """The job's fields decoded; None when it is not a whole job (e.g. Redis lost part of it)."""
    if not raw or "job_id" not in raw or "request" not in raw or not units:
        return None
    job: dict[str, Any] = {k: (json.loads(v) if k in _JSON_FIELDS and v else v) for k, v in raw.items()}
    for name in _INT_FIELDS:
        job[name] = int(job.get(name) or 0)
    return job
