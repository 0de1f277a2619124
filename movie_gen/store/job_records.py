"""A job as a whole, across its keys: created or restored at once, read whole, by page or by unit;
and its story bible, whose synopses have a hash of their own."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from movie_gen.store.job_index import JobIndex
from movie_gen.store.job_keys import LUA_PRELUDE, as_text
from movie_gen.store.job_model import BIBLE_UNIT, JobState, UnitStatus, now_iso, parse_timestamp, unit_name
from movie_gen.store.units import decode_unit, encode_unit, read_status_line, status_line, unit_fields

_JSON_FIELDS = ("request", "bible", "retry", "warnings")
_INT_FIELDS = ("sets_total", "tokens_prompt", "tokens_completion", "llm_calls")

# ARGV[3] task id of the bible ('' any), [4] bible without synopses, [5] title, [6] file stem
# ('' none), [7] lease token ('' none; KEYS[6] the lease), [8..] set number / synopsis pairs.
SAVE_BIBLE = LUA_PRELUDE + """
local owner = redis.call('HGET', KEYS[2], S.bible .. ':task_id')
if ARGV[3] ~= '' and owner and owner ~= ARGV[3] then return 0 end
if ARGV[7] ~= '' and redis.call('GET', KEYS[6]) ~= ARGV[7] then return -1 end
redis.call('HSET', KEYS[1], 'bible', ARGV[4], 'title', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'file_stem', ARGV[6]) end
hset_pairs(KEYS[3], 8)
local state = redis.call('HGET', KEYS[1], 'state')
if not FINAL[state] and state ~= S.cancelling then
  redis.call('HSET', KEYS[1], 'state', S.generating)
end
touch()
return 1
"""


class JobRecords(JobIndex):
    """Whole jobs: written in one transaction, read in one round trip."""

    def create(self, job_id: str, request: dict[str, Any], set_plans: list[dict[str, Any]],
               provider: str, owner: str | None = None,
               bible_record: dict[str, Any] | None = None) -> None:
        """Store a new job in state `queued` with one pending record per set."""
        now = now_iso()
        fields = {"job_id": job_id, "state": JobState.QUEUED, "created_at": now, "updated_at": now,
                  "request": request, "provider": provider, "owner": owner or "",
                  "sets_total": len(set_plans), "tokens_prompt": 0, "tokens_completion": 0,
                  "llm_calls": 0, "run": 1}
        units = [{**plan, "status": UnitStatus.PENDING, "attempts": []} for plan in set_plans]
        units.append({"status": UnitStatus.PENDING, "attempts": [], **(bible_record or {})})
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
        units = [*snapshot.get("sets", []), snapshot.get("bible_record") or {"status": UnitStatus.PENDING}]
        self._put_whole(snapshot["job_id"], fields, units, synopses)
        self._add_to_index(snapshot["job_id"], snapshot.get("owner") or None,
                           parse_timestamp(snapshot.get("created_at")))

    def _put_whole(self, job_id: str, fields: dict[str, Any], units: list[dict[str, Any]],
                   synopses: list[dict[str, Any]]) -> None:
        keys = self.keys(job_id)
        unit_values: dict[str, str] = {}
        for record in units:
            unit_values.update(encode_unit(unit_name(record.get("set_number")), record))
        pipe = self.redis.pipeline()  # MULTI/EXEC: readers never see half a job
        pipe.delete(*keys)
        pipe.hset(keys[0], mapping={k: as_text(v) for k, v in fields.items()})
        pipe.hset(keys[1], mapping=unit_values)
        pipe.set(keys[4], status_line(units))
        if synopses:
            pipe.hset(keys[2], mapping={str(s["set_number"]): json.dumps(s) for s in synopses})
        for key in keys:
            pipe.expire(key, self.ttl_s)
        pipe.execute()

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
        job["bible_record"] = records.pop(BIBLE_UNIT, {"status": UnitStatus.PENDING, "attempts": []})
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
        names = [name for u in [*map(str, numbers), BIBLE_UNIT] for name in unit_fields(u)]
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
        unit = unit_name(set_number)
        names = ["job_id", "state", "run", "request", "bible", "title", "file_stem", "sets_total",
                 "cancelled_at", "max_retries", "quota_not_before", "quota_error"]
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(keys[0], names)
        pipe.hmget(keys[1], unit_fields(unit))
        neighbours = [] if set_number is None else [str(n) for n in (set_number - 1, set_number,
                                                                     set_number + 1)]
        pipe.hmget(keys[2], neighbours or ["-"])
        fields, unit_values, synopses = pipe.execute()
        raw = {k: v for k, v in zip(names, fields) if v is not None}
        units = dict(zip(unit_fields(unit), unit_values))
        job = _decode_job(raw, {k: v for k, v in units.items() if v is not None})
        if job is None or units[f"{unit}:record"] is None:
            return None
        job["record"] = decode_unit(units, unit)
        if job.get("bible"):
            job["bible"]["set_synopses"] = [json.loads(s) for s in synopses if s]
            job["bible"]["sets_total"] = job["sets_total"]
        return job

    def all_segments(self, job_id: str) -> dict[int, list[dict[str, Any]]]:
        """Every stored set's segments, by set number (one read, for the assembled script)."""
        raw = self.redis.hgetall(self.keys(job_id)[3])
        return {int(n): json.loads(v) for n, v in raw.items()}

    def save_bible_if_owned(self, job_id: str, bible: dict[str, Any], file_stem: str | None,
                            task_id: str | None, lease: tuple[str, str] | None = None) -> int:
        """Store the bible only while the bible unit belongs to task `task_id` (not after a retry)
        and, with `lease` (key, token), only while that lease is held: 1, else 0 or -1 (lease)."""
        core = {k: v for k, v in bible.items() if k != "set_synopses"}
        synopses = [item for s in bible["set_synopses"] for item in (s["set_number"], json.dumps(s))]
        lease_key, token = lease or (None, "")
        return self._run(SAVE_BIBLE, job_id, task_id or "", json.dumps(core), bible["title"],
                         file_stem or "", token, *synopses, lease_key=lease_key)


def _decode_job(raw: dict[str, str], units: dict[str, str]) -> dict[str, Any] | None:
    """The job's fields decoded; None when it is not a whole job (e.g. Redis lost part of it)."""
    if not raw or "job_id" not in raw or "request" not in raw or not units:
        return None
    job: dict[str, Any] = {k: (json.loads(v) if k in _JSON_FIELDS and v else v) for k, v in raw.items()}
    for name in _INT_FIELDS:
        job[name] = int(job.get(name) or 0)
    return job
