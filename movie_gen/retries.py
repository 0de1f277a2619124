"""Regenerate only what failed: reset the failed units of a job and enqueue them again."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from celery import Celery

from .job_store import (
    FAILED,
    FINAL_STATES,
    GENERATING,
    OUTLINING,
    SET_PENDING,
    SET_RETRYING,
    SET_RUNNING,
    SET_SUCCESS,
    now_iso,
    parse_timestamp,
)
from .pipeline import enqueue_job, new_task_id
from .services import Services
from .settings import Settings

log = logging.getLogger(__name__)
RETRY_LOCK = "retry"


class RetryConflict(Exception):
    """The job cannot be retried now (still running, nothing failed, a retry already running)."""


def start_retry(svc: Services, celery: Celery, job_id: str, max_retries: int) -> list[int]:
    """Re-enqueue the sets that did not succeed (and the bible first, if it failed); returns them.

    The checks and the reset of the records happen in one atomic step on the job, so that no
    set that succeeds meanwhile is generated again.
    """
    lock_ttl = svc.settings.task_time_limit_s * 4 + int(svc.settings.retry_backoff_max)
    if not svc.store.acquire_lock(job_id, RETRY_LOCK, lock_ttl):
        job = svc.store.get(job_id)
        if job is None or stalled_seconds(job, svc.settings) is None:
            raise RetryConflict("a retry of this job is already running")
        svc.store.release_lock(job_id, RETRY_LOCK)  # the run that held it lost its tasks
        if not svc.store.acquire_lock(job_id, RETRY_LOCK, lock_ttl):
            raise RetryConflict("a retry of this job is already running")
    try:
        job = svc.store.get(job_id)
        if job is None:
            raise RetryConflict("the job's record is gone")
        set_fields = [f"set:{s['set_number']}" for s in job["sets"]]
        plan = svc.store.transform(
            job_id, ["state", "run", "updated_at", "bible", "bible_record", "retry", *set_fields],
            lambda values: _reset_for_retry(svc, values, max_retries))
        if plan is None:
            raise RetryConflict("the job's record is gone")
    except BaseException:
        svc.store.release_lock(job_id, RETRY_LOCK)
        raise
    failed, run, task_ids, bible_task_id = plan
    try:
        enqueue_job(celery, job_id, run, task_ids, bible_task_id)
    except Exception as exc:  # the broker is down: end the job rather than leave it "generating"
        svc.store.set_state(job_id, FAILED, error=f"could not enqueue the retry: {exc}")
        svc.store.release_lock(job_id, RETRY_LOCK)
        raise
    log.info("retry queued for sets %s", failed, extra={"job_id": job_id})
    return failed


def _reset_for_retry(svc: Services, values: list[str | None], max_retries: int):
    """From the job's current fields: the reset records and the plan of the retry run."""
    state, run_raw, updated_at, bible, bible_raw, retry_raw, *set_raws = values
    records = [json.loads(raw) for raw in set_raws if raw]
    bible_record = json.loads(bible_raw) if bible_raw else {"status": SET_PENDING, "attempts": []}
    job = {"state": state, "updated_at": updated_at, "bible": bible, "sets": records,
           "bible_record": bible_record}
    failed = _check_retryable(job, svc.settings)
    run = int(run_raw or 1) + 1
    task_ids = {n: new_task_id() for n in failed}
    fields: dict[str, Any] = {}
    for record in records:
        if record["set_number"] in failed:
            record.update(status=SET_PENDING, run=record.get("run", 1) + 1,
                          task_id=task_ids[record["set_number"]])
            for key in ("error_message", "last_error", "segments_count", "file_path"):
                record.pop(key, None)
            fields[f"set:{record['set_number']}"] = record
    bible_task_id = None
    if not bible:
        bible_task_id = new_task_id()
        bible_record.update(status=SET_PENDING, run=bible_record.get("run", 1) + 1,
                            task_id=bible_task_id)
        bible_record.pop("error_message", None)
        fields["bible_record"] = bible_record
    previous = json.loads(retry_raw) if retry_raw else {}
    fields["retry"] = {"retry_performed": True, "retry_timestamp": now_iso(), "retried_sets": failed,
                       "retry_count": int(previous.get("retry_count", 0)) + 1}
    fields.update(max_retries=str(max_retries), error="", cancelled_at="", run=str(run),
                  state=OUTLINING if not bible else GENERATING)
    return fields, (failed, run, task_ids, bible_task_id)


def _is_live(record: dict[str, Any], settings: Settings) -> bool:
    """Whether a running or retrying unit can still be making progress."""
    last = (record.get("attempts") or [{}])[-1]
    now = time.time()
    if record.get("status") == SET_RUNNING:
        return now - parse_timestamp(last.get("started_at")) < settings.task_time_limit_s + 60
    if record.get("status") == SET_RETRYING:
        due = parse_timestamp(last.get("finished_at")) + float(last.get("delay_s") or 0)
        return now < due + settings.task_time_limit_s + 60
    return False


def stalled_seconds(job: dict[str, Any], settings: Settings) -> float | None:
    """How long a running job has made no progress, once that is longer than any redelivery takes."""
    if job["state"] in FINAL_STATES or not job.get("updated_at"):
        return None
    idle = time.time() - parse_timestamp(job["updated_at"])
    return idle if idle >= settings.stall_after_s else None


def _check_retryable(job: dict[str, Any], settings: Settings) -> list[int]:
    """The set numbers to run again, or RetryConflict saying why there are none now."""
    stalled = stalled_seconds(job, settings) is not None
    if job["state"] not in FINAL_STATES and not stalled:
        raise RetryConflict(f"the job is still running (state '{job['state']}'); retry once it ends")
    units = [*job["sets"], job["bible_record"]]
    if not stalled and any(_is_live(u, settings) for u in units):
        raise RetryConflict("a set of this job is still running; retry once it has finished")
    if not job.get("bible"):
        return [s["set_number"] for s in job["sets"]]
    failed = [s["set_number"] for s in job["sets"] if s["status"] != SET_SUCCESS]
    if not failed:
        raise RetryConflict("nothing to retry: every set of this job succeeded")
    return failed


def retry_results(job: dict[str, Any]) -> list[dict[str, Any]]:
    """What happened to each set of the last retry."""
    retried = (job.get("retry") or {}).get("retried_sets", [])
    by_number = {s["set_number"]: s for s in job["sets"]}
    return [{"set_number": n, "status": by_number[n]["status"],
             "segments_generated": by_number[n].get("segments_count", 0)}
            for n in retried if n in by_number]
