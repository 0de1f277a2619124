"""Regenerate only what failed: reset the failed units of a job and enqueue them again."""

from __future__ import annotations

import logging
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
)
from .pipeline import enqueue_job, new_task_id
from .services import Services

log = logging.getLogger(__name__)
RETRY_LOCK = "retry"


class RetryConflict(Exception):
    """The job cannot be retried now (still running, nothing failed, a retry already running)."""


def start_retry(svc: Services, celery: Celery, job_id: str, max_retries: int) -> list[int]:
    """Re-enqueue the sets that did not succeed (and the bible first, if it failed); returns them."""
    lock_ttl = svc.settings.task_time_limit_s * 4 + int(svc.settings.retry_backoff_max)
    if not svc.store.acquire_lock(job_id, RETRY_LOCK, lock_ttl):
        raise RetryConflict("a retry of this job is already running")
    try:
        job = svc.store.get(job_id)  # read under the lock: another retry may just have ended
        if job is None:
            raise RetryConflict("the job's record is gone")
        failed = _check_retryable(job)
        needs_bible = not job.get("bible")
        run = int(job.get("run") or 1) + 1
        task_ids = {n: new_task_id() for n in failed}
        for record in job["sets"]:
            if record["set_number"] in failed:
                record.update(status=SET_PENDING, run=record.get("run", 1) + 1,
                              task_id=task_ids[record["set_number"]])
                for key in ("error_message", "last_error", "segments_count", "file_path"):
                    record.pop(key, None)
                svc.store.put_record(job_id, f"set:{record['set_number']}", record)
        bible_task_id = None
        if needs_bible:
            bible_task_id = new_task_id()
            bible_record = dict(job.get("bible_record") or {"attempts": []})
            bible_record.update(status=SET_PENDING, run=bible_record.get("run", 1) + 1,
                                task_id=bible_task_id)
            svc.store.put_record(job_id, "bible_record", bible_record)
        retry = {"retry_performed": True, "retry_timestamp": now_iso(), "retried_sets": failed,
                 "retry_count": int((job.get("retry") or {}).get("retry_count", 0)) + 1}
        svc.store.update(job_id, retry=retry, max_retries=str(max_retries), error="", cancelled_at="",
                         run=str(run))
    except BaseException:
        svc.store.release_lock(job_id, RETRY_LOCK)
        raise
    svc.store.set_state(job_id, OUTLINING if needs_bible else GENERATING)
    try:
        enqueue_job(celery, job_id, run, task_ids, bible_task_id)
    except Exception as exc:  # the broker is down: end the job rather than leave it "generating"
        svc.store.set_state(job_id, FAILED, error=f"could not enqueue the retry: {exc}")
        svc.store.release_lock(job_id, RETRY_LOCK)
        raise
    log.info("retry queued for sets %s", failed, extra={"job_id": job_id})
    return failed


def _check_retryable(job: dict[str, Any]) -> list[int]:
    """The set numbers to run again, or RetryConflict saying why there are none now."""
    if job["state"] not in FINAL_STATES:
        raise RetryConflict(f"the job is still running (state '{job['state']}'); retry once it ends")
    if any(s["status"] in (SET_RUNNING, SET_RETRYING) for s in job["sets"]):
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
