"""Attempt records of a job's units (the story bible, each set): started, finished, error, delay."""

from __future__ import annotations

import logging
from typing import Any

from movie_gen.errors import LeaseLost, MovieGenError
from movie_gen.store.job_model import UnitStatus, now_iso
from movie_gen.store.job_store import JobStore

log = logging.getLogger(__name__)


WORKER_LOST = "worker_lost"


def start(store: JobStore, job_id: str, set_number: int | None, record: dict[str, Any],
          attempt: int, task_id: str, lease: tuple[str, str]) -> tuple[int, dict[str, Any], int]:
    """Claim attempt `attempt` of the unit's current run and open it (see `JobStore.claim_attempt`).

    Returns the claim's code (1 a new attempt, 2 a lost one run again, 0 nothing to claim, -3 the
    job is being cancelled), the record, and how many deliveries of this attempt died with their
    worker. A delivery of an attempt whose worker was lost before it finished leaves that
    delivery in the history as `worker_lost`, and gets an entry of its own.
    """
    record = {**record, "attempts": [dict(a) for a in record.get("attempts", [])]}
    run = int(record.get("run", 1))
    same = [a for a in record["attempts"] if (a.get("run", 1), a["attempt"]) == (run, attempt)]
    for entry in same:
        if "finished_at" not in entry:
            entry.update(finished_at=now_iso(), outcome=WORKER_LOST, error_class=WORKER_LOST,
                         error="the worker was lost during this attempt")
    lost = sum(1 for entry in same if entry.get("outcome") == WORKER_LOST)
    record["attempts"].append({"run": run, "attempt": attempt, "delivery": len(same) + 1,
                               "started_at": now_iso()})
    record["status"] = UnitStatus.RUNNING
    record["task_id"] = task_id
    record.pop("error", None)
    code = store.claim_attempt(job_id, set_number, record, task_id, run, attempt, lease)
    if code in (-1, -2):
        raise LeaseLost("the unit's lease was lost, or its job has ended", job_ended=code == -2)
    return code, record, lost


def finish(store: JobStore, job_id: str, set_number: int | None, record: dict[str, Any],
           *, status: str, error: BaseException | None = None, error_class: str | None = None,
           delay_s: float | None = None, segments: list[dict[str, Any]] | None = None,
           lease: tuple[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    """Close the last attempt with its outcome and store the unit's new status (and segments).

    The attempt keeps the token usage of its model calls: a dict, or None when unknown (a call
    that timed out); a unit's `token_usage` is that of its successful attempt.
    """
    entry = record["attempts"][-1]
    entry["finished_at"] = now_iso()
    entry["outcome"] = "error" if error is not None else "success"
    if error is not None and isinstance(error, MovieGenError):
        entry["token_usage"] = error.usage
    elif "token_usage" in fields:
        entry["token_usage"] = fields["token_usage"]
    if error is not None:
        entry["error_class"] = error_class
        entry["error"] = str(error)
        record["last_error"] = str(error)
    if delay_s is not None:
        entry["delay_s"] = delay_s
    record.update(status=status, **fields)
    written = store.put_unit_if_owned(job_id, set_number, record, record["task_id"], segments, lease)
    if written < 0:
        raise LeaseLost("the unit's lease was lost, or its job has ended: this outcome is dropped",
                        job_ended=written == -2)
    if not written:
        log.warning("outcome of an earlier run dropped: the unit was retried since",
                    extra={"job_id": job_id, "set_number": set_number})
    log.info("attempt %s of %s %s: %s%s", entry["attempt"],
             "set" if set_number is not None else "story bible", set_number or "",
             entry["outcome"] if error is None else f"{error_class}: {error}",
             f", next try in {delay_s}s" if delay_s is not None else "",
             extra={"job_id": job_id, "set_number": set_number, "attempt": entry["attempt"],
                    "delay_s": delay_s, "outcome": entry["outcome"]})
    return record


def will_retry(store: JobStore, job_id: str, set_number: int | None, record: dict[str, Any],
               error: BaseException, error_class: str, delay_s: float,
               lease: tuple[str, str] | None = None) -> dict[str, Any]:
    return finish(store, job_id, set_number, record, status=UnitStatus.RETRYING, error=error,
                  error_class=error_class, delay_s=delay_s, lease=lease)


def failure_message(set_number: int | None, record: dict[str, Any], error: BaseException) -> str:
    """"Failed to generate set N after K attempts: …", K counting this run's attempts."""
    what = f"set {set_number}" if set_number is not None else "the story bible"
    run = record.get("run", 1)
    count = sum(1 for a in record["attempts"] if a.get("run", 1) == run)
    return f"Failed to generate {what} after {count} attempt{'s' if count != 1 else ''}: {error}"


def give_up(store: JobStore, job_id: str, set_number: int | None, record: dict[str, Any],
            error: BaseException, error_class: str,
            lease: tuple[str, str] | None = None) -> dict[str, Any]:
    """The unit failed for good: its record carries the reason and the number of attempts."""
    message = failure_message(set_number, record, error)
    return finish(store, job_id, set_number, record, status=UnitStatus.FAILED, error=error,
                  error_class=error_class, error_message=message, lease=lease)
