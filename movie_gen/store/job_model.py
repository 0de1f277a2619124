"""The job model: a job's states and what may follow each, its units' statuses, ids and timestamps.

The one source of these names for Python and for the store's Lua scripts (`lua_constants`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import StrEnum, auto


class JobState(StrEnum):
    """The `state` field of a job."""

    QUEUED = auto()
    OUTLINING = auto()
    GENERATING = auto()
    CANCELLING = auto()  # a cancel was asked while units ran; `cancelled` once they stop
    COMPLETED = auto()
    PARTIAL = auto()
    FAILED = auto()
    CANCELLED = auto()


class UnitStatus(StrEnum):
    """The status of a unit: the story bible or one set."""

    PENDING = auto()
    RUNNING = auto()
    RETRYING = auto()
    SUCCESS = auto()
    FAILED = auto()
    CANCELLED = auto()


QUEUED, OUTLINING, GENERATING, CANCELLING, COMPLETED, PARTIAL, FAILED, CANCELLED = JobState  # for TRANSITIONS
BIBLE_UNIT = "bible"  # the bible's name among the units; a set's is its number

# A retry starts a new run of a job that has ended (or stalled): at the bible, or at the sets when
# the bible is kept.
RUN_STARTS = frozenset({OUTLINING, GENERATING})
# What may follow each state, besides a new run of a stalled job.
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    QUEUED: frozenset({OUTLINING, CANCELLING, FAILED}),  # failed: it could not be enqueued
    OUTLINING: frozenset({GENERATING, CANCELLING, FAILED}),
    GENERATING: frozenset({OUTLINING, COMPLETED, PARTIAL, FAILED, CANCELLING}),  # the bible again
    CANCELLING: frozenset({CANCELLED}),  # once no unit runs
    COMPLETED: frozenset(),
    PARTIAL: RUN_STARTS,
    FAILED: RUN_STARTS,
    CANCELLED: RUN_STARTS,
}
STATES = tuple(JobState)
# A job has ended when only a new run leaves its state; a job seen final never changes otherwise.
FINAL_STATES = tuple(s for s in JobState if TRANSITIONS[s] <= RUN_STARTS)
WAITING = (UnitStatus.PENDING, UnitStatus.RETRYING)  # a unit that may start an attempt
UNFINISHED = (*WAITING, UnitStatus.RUNNING)  # a unit without an outcome yet
# The status line's code of each status (three characters per set: code, then attempt count).
STATUS_CODES = dict(zip(UnitStatus, "prysfc"))


def unit_name(set_number: int | None) -> str:
    """The unit's name in the store: the set number, or `bible` for the story bible (None)."""
    return BIBLE_UNIT if set_number is None else str(set_number)


def lua_constants() -> str:
    """The model as Lua locals: `S` (each state, status and `bible` by its name), `FINAL`,
    `CODE` (the status line's codes) and `WAITING`."""
    names = dict.fromkeys([*JobState, *UnitStatus, BIBLE_UNIT])
    tables = {"S": {n: f"'{n}'" for n in names}, "FINAL": dict.fromkeys(FINAL_STATES, "true"),
              "CODE": {s: f"'{c}'" for s, c in STATUS_CODES.items()}, "WAITING": dict.fromkeys(WAITING, "true")}
    return "".join(f"local {name} = {{{', '.join(f'{k} = {v}' for k, v in table.items())}}}\n"
                   for name, table in tables.items())


def now_iso(at: float | None = None) -> str:
    """UTC timestamp with milliseconds, e.g. 2026-11-28T21:03:04.123Z (now, or epoch `at`)."""
    moment = datetime.now(timezone.utc) if at is None else datetime.fromtimestamp(at, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(iso: str | None) -> float:
    """Seconds since the epoch of an ISO timestamp (now, if it cannot be read)."""
    try:
        return datetime.fromisoformat((iso or "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return datetime.now(timezone.utc).timestamp()


def new_job_id() -> str:
    """A random job id that is safe in URLs and file names."""
    return uuid.uuid4().hex
