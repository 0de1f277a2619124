"""The units hash and the status line: each unit's status, task id, claim, delivery and record.

The status line holds three characters per set (status code, then the attempt count in two
digits, capped at 99), so the job URL reads every set's status with one GET. Only the task that
owns a unit writes it, and an attempt starts only by claiming its number.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from movie_gen.store.job_keys import LUA_PRELUDE, JobKeys
from movie_gen.store.job_model import BIBLE_UNIT, STATUS_CODES, UnitStatus, unit_name

UNIT_FIELDS = ("status", "task_id", "record")  # of each unit in the units hash
_STATUSES = {code: status for status, code in STATUS_CODES.items()}
_PENDING = STATUS_CODES[UnitStatus.PENDING]

# Writes a set's status and attempt count into the status line (the bible has none).
_UNIT_LUA = LUA_PRELUDE + """
local function show(unit, status, attempts)
  if unit == S.bible then return end
  local text = CODE[status] or CODE.pending
  if attempts then text = text .. string.format('%02d', math.min(99, tonumber(attempts))) end
  redis.call('SETRANGE', KEYS[5], (tonumber(unit) - 1) * 3, text)
end
"""

# ARGV[3] unit, [4] task id, [5] status, [6] attempt count, [7] record, [8] segments ('' none),
# [9] lease token ('' none); KEYS[6] the unit's lease. Only the task that owns the unit writes it
# (a retry gives the unit a new task id), only while it holds the unit's lease, and never once
# the job has ended (a set still running when its job was cancelled finishes while the job is
# `cancelling`; the job turns `cancelled` only once no set runs).
UNIT_OWNED_WRITE = _UNIT_LUA + """
local u = ARGV[3]
local owner = redis.call('HGET', KEYS[2], u .. ':task_id')
if owner and owner ~= ARGV[4] then return 0 end
if ARGV[9] ~= '' and redis.call('GET', KEYS[6]) ~= ARGV[9] then return -1 end
if FINAL[redis.call('HGET', KEYS[1], 'state')] then return -2 end
redis.call('HSET', KEYS[2], u .. ':status', ARGV[5], u .. ':task_id', ARGV[4], u .. ':record', ARGV[7])
show(u, ARGV[5], ARGV[6])
if ARGV[8] ~= '' then redis.call('HSET', KEYS[4], u, ARGV[8]) end
touch()
return 1
"""

# ARGV[3] unit, [4] task id, [5] run, [6] attempt, [7] record, [8] lease token, [9] attempt count;
# KEYS[6] the unit's lease. An attempt starts only by claiming its number: attempt N of run R is
# claimed once, by the delivery that holds the lease, when the unit's last claim is N - 1 of R and
# the unit waits (pending or retrying): 1. A delivery of the attempt already claimed whose unit is
# still `running` (its worker was lost, so its lease is free and now ours) runs it again: 2.
# Anything else (a copy of a message whose attempt was claimed, an old run's, a unit that ended)
# claims nothing: 0; -1 the lease is not held; -2 the job has ended; -3 it is being cancelled.
CLAIM_ATTEMPT = _UNIT_LUA + """
local u = ARGV[3]
local owner = redis.call('HGET', KEYS[2], u .. ':task_id')
if owner and owner ~= ARGV[4] then return 0 end
if redis.call('GET', KEYS[6]) ~= ARGV[8] then return -1 end
if FINAL[redis.call('HGET', KEYS[1], 'state')] then return -2 end
local cancelled = redis.call('HGET', KEYS[1], 'cancelled_at')
if cancelled and cancelled ~= '' then return -3 end
if (redis.call('HGET', KEYS[1], 'run') or '1') ~= ARGV[5] then return 0 end
local claim_run, claimed = string.match(redis.call('HGET', KEYS[2], u .. ':claim') or '', '^(%d+):(%d+)$')
if claim_run ~= ARGV[5] then claimed = 0 else claimed = tonumber(claimed) end
local status = redis.call('HGET', KEYS[2], u .. ':status') or S.pending
local attempt = tonumber(ARGV[6])
local code = 0
if claimed == attempt - 1 and WAITING[status] then code = 1
elseif claimed == attempt and status == S.running then code = 2
else return 0 end
redis.call('HSET', KEYS[2], u .. ':claim', ARGV[5] .. ':' .. ARGV[6], u .. ':status', S.running,
           u .. ':task_id', ARGV[4], u .. ':record', ARGV[7])
show(u, S.running, ARGV[9])
touch()
return code
"""

# ARGV[3] unit, [4] allowed statuses (space-separated), [5] new status, [6] new record ('' keeps
# it), [7] expected record ('' any), [8] new task id ('' keeps it).
UNIT_CAS = _UNIT_LUA + """
local u = ARGV[3]
local status = redis.call('HGET', KEYS[2], u .. ':status') or ''
local allowed = false
for s in string.gmatch(ARGV[4], '%S+') do if s == status then allowed = true end end
if not allowed then return 0 end
if ARGV[7] ~= '' and redis.call('HGET', KEYS[2], u .. ':record') ~= ARGV[7] then return 0 end
redis.call('HSET', KEYS[2], u .. ':status', ARGV[5])
show(u, ARGV[5], nil)
if ARGV[6] ~= '' then redis.call('HSET', KEYS[2], u .. ':record', ARGV[6]) end
if ARGV[8] ~= '' then redis.call('HSET', KEYS[2], u .. ':task_id', ARGV[8]) end
touch()
return 1
"""

# ARGV[3] field, [4] value of the units hash (e.g. `n:delivery`).
WRITE_UNIT_FIELD = LUA_PRELUDE + """
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
touch()
return 1
"""


class Units(JobKeys):
    """Each unit's fields in the units hash and its place in the status line."""

    def get_record(self, job_id: str, set_number: int | None) -> dict[str, Any] | None:
        """One unit's record (`None` for the bible)."""
        unit = unit_name(set_number)
        units = dict(zip(unit_fields(unit), self.redis.hmget(self.keys(job_id)[1], unit_fields(unit))))
        return decode_unit(units, unit) if units[f"{unit}:record"] else None

    def set_task_ids(self, job_id: str) -> dict[int, str]:
        """Each set's current task id (read once per run, when the sets are sent)."""
        total = int(self.redis.hget(self.key(job_id), "sets_total") or 0)
        ids = self.redis.hmget(self.keys(job_id)[1], [f"{n}:task_id" for n in range(1, total + 1)])
        return {n: task_id for n, task_id in enumerate(ids, start=1) if task_id}

    def running_units(self, job_id: str) -> int:
        """How many of the job's units (its sets and its bible) are running now."""
        keys = self.keys(job_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys[4])
        pipe.hget(keys[1], f"{BIBLE_UNIT}:status")
        line, bible = pipe.execute()
        return (line or "")[::3].count(STATUS_CODES[UnitStatus.RUNNING]) + (bible == UnitStatus.RUNNING)

    def put_unit_if_owned(self, job_id: str, set_number: int | None, record: dict[str, Any],
                          task_id: str, segments: list[dict[str, Any]] | None = None,
                          lease: tuple[str, str] | None = None) -> int:
        """Write a unit's record (and a set's segments) only while the unit belongs to `task_id`.

        With `lease` (key, token), only while that lease is held; never once the job has ended.
        Returns 1 when written; 0 when the unit is another task's (or the job is gone), -1 when the
        lease is not held, -2 when the job has ended.
        """
        lease_key, token = lease or (None, "")
        return self._run(UNIT_OWNED_WRITE, job_id, unit_name(set_number), task_id, record["status"],
                         len(record.get("attempts", [])), json.dumps(_body(record)),
                         json.dumps(segments) if segments is not None else "", token, lease_key=lease_key)

    def claim_attempt(self, job_id: str, set_number: int | None, record: dict[str, Any],
                      task_id: str, run: int, attempt: int, lease: tuple[str, str]) -> int:
        """Start attempt `attempt` of run `run` by claiming its number (see CLAIM_ATTEMPT):
        1 claimed, 2 a lost attempt taken over, 0 nothing to claim, -1 lease not held, -2 the
        job has ended, -3 it is being cancelled."""
        return self._run(CLAIM_ATTEMPT, job_id, unit_name(set_number), task_id, run, attempt,
                         json.dumps(_body(record)), lease[1], len(record.get("attempts", [])),
                         lease_key=lease[0])

    def update_unit_if(self, job_id: str, set_number: int | None, statuses: Iterable[str],
                       status: str, record: dict[str, Any] | None = None,
                       expected: dict[str, Any] | None = None, task_id: str | None = None) -> bool:
        """Change a unit's status (and record, task id) only while its status is one of `statuses`.

        With `expected`, only if its record is still exactly that one (compare-and-set).
        """
        return bool(self._run(UNIT_CAS, job_id, unit_name(set_number), " ".join(statuses), status,
                              json.dumps(_body(record)) if record is not None else "",
                              json.dumps(_body(expected)) if expected is not None else "", task_id or ""))

    def put_delivery(self, job_id: str, set_number: int | None, options: dict[str, Any]) -> None:
        """How to send the unit's message again (task id, chord, retries), for the recovery check."""
        self._run(WRITE_UNIT_FIELD, job_id, f"{unit_name(set_number)}:delivery", json.dumps(options))

    def get_delivery(self, job_id: str, set_number: int | None) -> dict[str, Any] | None:
        raw = self.redis.hget(self.keys(job_id)[1], f"{unit_name(set_number)}:delivery")
        return json.loads(raw) if raw else None


def unit_fields(unit: str) -> list[str]:
    """The names of a unit's fields in the units hash."""
    return [f"{unit}:{part}" for part in UNIT_FIELDS]


def _body(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("status", "task_id")}


def encode_unit(unit: str, record: dict[str, Any]) -> dict[str, str]:
    """A unit's record as the fields of the units hash: status, task id, record."""
    fields = {f"{unit}:status": record.get("status", UnitStatus.PENDING),
              f"{unit}:record": json.dumps(_body(record))}
    if record.get("task_id"):
        fields[f"{unit}:task_id"] = record["task_id"]
    return fields


def decode_unit(fields: dict[str, str | None], unit: str) -> dict[str, Any]:
    """A unit's record from the fields of the units hash (the inverse of `encode_unit`)."""
    record = json.loads(fields.get(f"{unit}:record") or "{}")
    record["status"] = fields.get(f"{unit}:status") or UnitStatus.PENDING
    if fields.get(f"{unit}:task_id"):
        record["task_id"] = fields[f"{unit}:task_id"]
    record.setdefault("attempts", [])
    return record


def status_line(units: list[dict[str, Any]]) -> str:
    """Three characters per set, in set order: status code and attempt count (00-99)."""
    sets = sorted((u for u in units if "set_number" in u), key=lambda u: u["set_number"])
    return "".join(f"{STATUS_CODES.get(u.get('status'), _PENDING)}{min(99, len(u.get('attempts', []))):02d}"
                   for u in sets)


def read_status_line(line: str, total: int) -> tuple[dict[int, str], dict[int, int]]:
    """Every set's status and attempt count from the status line."""
    statuses, counts = {}, {}
    for n in range(1, total + 1):
        chunk = line[3 * (n - 1):3 * n]
        statuses[n] = _STATUSES.get(chunk[:1], UnitStatus.PENDING)
        counts[n] = int(chunk[1:] or 0) if chunk[1:].isdigit() else 0
    return statuses, counts
