"""Lua scripts of the job store: each conditional update is one atomic script on a few small keys.

Every script takes the job's five keys (job hash, units hash, synopses hash, segments hash,
status line) and ARGV[1] = time to live, ARGV[2] = now (ISO). A script refreshes the time to live
of the five keys, so a job's keys live and expire together. None of them rewrites a record that
other units write.

The status line holds three characters per set (status code, then the attempt count in two
digits, capped at 99), so the job URL reads every set's status with one GET.
"""

from __future__ import annotations

_PRELUDE = """
local FINAL = {completed = true, partial = true, failed = true, cancelled = true}
local CODE = {pending = 'p', running = 'r', retrying = 'y', success = 's', failed = 'f',
              cancelled = 'c'}
local function touch()
  redis.call('HSET', KEYS[1], 'updated_at', ARGV[2])
  for i = 1, 5 do redis.call('EXPIRE', KEYS[i], ARGV[1]) end
  -- every change bumps the job's version and tells the web processes (their event streams)
  redis.call('PUBLISH', KEYS[1] .. ':changed', redis.call('HINCRBY', KEYS[1], 'version', 1))
end
local function show(unit, status, attempts)
  if unit == 'bible' then return end
  local text = CODE[status] or 'p'
  if attempts then text = text .. string.format('%02d', math.min(99, tonumber(attempts))) end
  redis.call('SETRANGE', KEYS[5], (tonumber(unit) - 1) * 3, text)
end
local function hset_pairs(key, first)
  for i = first, #ARGV, 2 do redis.call('HSET', key, ARGV[i], ARGV[i + 1]) end
end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
"""

# ARGV[3..]: field/value pairs of the job hash. Workers never recreate a job that Redis lost.
WRITE_JOB = _PRELUDE + """
hset_pairs(KEYS[1], 3)
touch()
return 1
"""

# The job is alive (a message waits for its model-call slot); a job that has ended is left as it is.
TOUCH_IF_RUNNING = _PRELUDE + """
if FINAL[redis.call('HGET', KEYS[1], 'state')] then return 0 end
touch()
return 1
"""

# ARGV[3]: the new state; a job that has already ended (or is being cancelled) keeps its state.
ADVANCE_STATE = _PRELUDE + """
local current = redis.call('HGET', KEYS[1], 'state')
if FINAL[current] or current == 'cancelling' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[3])
touch()
return 1
"""

# ARGV[3]: the run that ends the job; ARGV[4..]: fields. A newer run (a retry) keeps the job, and a
# job seen final never changes: only the first call of a run ends it.
FINALIZE = _PRELUDE + """
if (redis.call('HGET', KEYS[1], 'run') or '1') ~= ARGV[3] then return 0 end
if FINAL[redis.call('HGET', KEYS[1], 'state')] then return 0 end
hset_pairs(KEYS[1], 4)
touch()
return 1
"""

# ARGV[3..]: fields set only while the job has not ended nor is being cancelled (e.g. cancelled_at).
IF_RUNNING = _PRELUDE + """
local current = redis.call('HGET', KEYS[1], 'state')
if FINAL[current] or current == 'cancelling' then return 0 end
hset_pairs(KEYS[1], 3)
touch()
return 1
"""

# ARGV[3] expected run, ARGV[4] '1' if a job that has not ended may start a run (it stalled),
# ARGV[5..] fields. Two retries that race: only the one that read the current run starts one.
BEGIN_RUN = _PRELUDE + """
if (redis.call('HGET', KEYS[1], 'run') or '1') ~= ARGV[3] then return 0 end
if ARGV[4] ~= '1' and not FINAL[redis.call('HGET', KEYS[1], 'state')] then return 0 end
hset_pairs(KEYS[1], 5)
touch()
return 1
"""

# ARGV[3] unit, [4] task id, [5] status, [6] attempt count, [7] record, [8] segments ('' none),
# [9] lease token ('' none); KEYS[6] the unit's lease. Only the task that owns the unit writes it
# (a retry gives the unit a new task id), only while it holds the unit's lease, and never once
# the job has ended (a set still running when its job was cancelled finishes while the job is
# `cancelling`; the job turns `cancelled` only once no set runs).
UNIT_OWNED_WRITE = _PRELUDE + """
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
CLAIM_ATTEMPT = _PRELUDE + """
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
local status = redis.call('HGET', KEYS[2], u .. ':status') or 'pending'
local attempt = tonumber(ARGV[6])
local code = 0
if claimed == attempt - 1 and (status == 'pending' or status == 'retrying') then code = 1
elseif claimed == attempt and status == 'running' then code = 2
else return 0 end
redis.call('HSET', KEYS[2], u .. ':claim', ARGV[5] .. ':' .. ARGV[6], u .. ':status', 'running',
           u .. ':task_id', ARGV[4], u .. ':record', ARGV[7])
show(u, 'running', ARGV[9])
touch()
return code
"""

# ARGV[3] the run to finish: 1 for the one caller that may end it (the job has not ended and no
# other caller took this run's ending), else 0.
CLAIM_FINISH = _PRELUDE + """
if FINAL[redis.call('HGET', KEYS[1], 'state')] then return 0 end
if redis.call('HGET', KEYS[1], 'finishing') == ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'finishing', ARGV[3])
return 1
"""

# ARGV[3] unit, [4] allowed statuses (space-separated), [5] new status, [6] new record ('' keeps
# it), [7] expected record ('' any), [8] new task id ('' keeps it).
UNIT_CAS = _PRELUDE + """
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

# ARGV[3] task id of the bible ('' any), [4] bible without synopses, [5] title, [6] file stem
# ('' none), [7] lease token ('' none; KEYS[6] the lease), [8..] set number / synopsis pairs.
SAVE_BIBLE = _PRELUDE + """
local owner = redis.call('HGET', KEYS[2], 'bible:task_id')
if ARGV[3] ~= '' and owner and owner ~= ARGV[3] then return 0 end
if ARGV[7] ~= '' and redis.call('GET', KEYS[6]) ~= ARGV[7] then return -1 end
redis.call('HSET', KEYS[1], 'bible', ARGV[4], 'title', ARGV[5])
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'file_stem', ARGV[6]) end
hset_pairs(KEYS[3], 8)
local state = redis.call('HGET', KEYS[1], 'state')
if not FINAL[state] and state ~= 'cancelling' then
  redis.call('HSET', KEYS[1], 'state', 'generating')
end
touch()
return 1
"""

# ARGV[3] the reply's structured-output mode ('' none), [4..] counter / increment pairs (the
# token usage of one attempt's calls).
ADD_USAGE = _PRELUDE + """
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'output_mode', ARGV[3]) end
for i = 4, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
touch()
return 1
"""

# ARGV[3]: the run whose sets are about to be sent; 0 if they were sent already or the run is old.
SETS_SENT = _PRELUDE + """
if (redis.call('HGET', KEYS[1], 'run') or '1') ~= ARGV[3] then return 0 end
if redis.call('HGET', KEYS[1], 'sets_sent') == ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'sets_sent', ARGV[3])
touch()
return 1
"""

# ARGV[3] field, [4] value of the units hash (e.g. `n:reported`).
WRITE_UNIT_FIELD = _PRELUDE + """
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
touch()
return 1
"""
