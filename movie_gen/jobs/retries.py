"""Regenerate only what failed: reset the failed units of a job and enqueue them again."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Celery

from movie_gen.config.settings import Settings
from movie_gen.execution.canvas import enqueue_job, new_task_id
from movie_gen.services import Services
from movie_gen.store.job_model import FINAL_STATES, JobState, UnitStatus, now_iso, parse_timestamp

log = logging.getLogger(__name__)


class RetryConflict(Exception):
    """The job cannot be retried now (still running, nothing failed, a retry already running)."""


def start_retry(svc: Services, celery: Celery, job_id: str, max_retries: int) -> list[int]:
    """Re-enqueue the sets that did not succeed (and the bible first, if it failed); returns them.

    The new run starts with one compare-and-set on the job's run number: of two retries that
    race, one starts the run and the other answers 409. Each unit is then reset only if it has
    still not succeeded, so a set that succeeded meanwhile is never generated again.
    """
    job = svc.store.get(job_id)
    if job is None:
        raise RetryConflict("the job's record is gone")
    stalled = stalled_seconds(job, svc.settings) is not None
    failed = _check_retryable(job, svc.settings)
    run = int(job.get("run") or 1)
    previous = job.get("retry") or {}
    retry = {"retry_performed": True, "retry_timestamp": now_iso(), "retried_sets": failed,
             "retry_count": int(previous.get("retry_count", 0)) + 1}
    if not svc.store.begin_run(job_id, run, stalled, retry=retry, max_retries=str(max_retries),
                               error="", cancelled_at="", quota_not_before="", quota_error="",
                               retry_scheduled_at="",
                               state=JobState.GENERATING if job.get("bible") else JobState.OUTLINING):
        raise RetryConflict("a retry of this job is already running")
    task_ids = {n: new_task_id() for n in failed}
    records = {s["set_number"]: s for s in job["sets"]}
    for number in list(failed):
        if not _reset_unit(svc, job_id, number, records[number], task_ids[number]):
            failed.remove(number)  # it succeeded meanwhile (a late message of a stalled run)
            del task_ids[number]
    if len(failed) != len(retry["retried_sets"]):
        svc.store.set_fields(job_id, retry={**retry, "retried_sets": failed})
    bible_task_id = None
    if not job.get("bible"):
        bible_task_id = new_task_id()
        _reset_unit(svc, job_id, None, job["bible_record"], bible_task_id)
    try:
        enqueue_job(celery, job_id, run + 1, task_ids, bible_task_id)
    except Exception as exc:  # the broker is down: end the job rather than leave it "generating"
        svc.store.set_state(job_id, JobState.FAILED, error=f"could not enqueue the retry: {exc}")
        raise
    log.info("retry queued for sets %s", failed, extra={"job_id": job_id})
    return failed


def schedule_retry(svc: Services, celery: Celery, job_id: str, max_retries: int) -> float | None:
    """Retry the job once its quota's `not_before` has passed; now, if it already has.

    Returns the time the retry is scheduled for (epoch seconds), or None when it started now.
    """
    job = svc.store.get(job_id)
    if job is None:
        raise RetryConflict("the job's record is gone")
    if not job.get("quota_not_before"):
        raise RetryConflict("this job has no not_before to wait for (its model quota did not run "
                            "out); retry it now")
    _check_retryable(job, svc.settings)
    at = parse_timestamp(job["quota_not_before"])
    if at <= time.time():
        start_retry(svc, celery, job_id, max_retries)
        return None
    svc.store.schedule_retry(job_id, at, max_retries)
    log.info("retry scheduled for %s", job["quota_not_before"], extra={"job_id": job_id})
    return at


def run_due_retries(svc: Services, celery: Celery) -> list[str]:
    """Start the scheduled retries that are due (each worker's recovery check calls this)."""
    started = []
    for job_id in svc.store.take_due_retries(time.time()):
        try:
            start_retry(svc, celery, job_id, svc.store.scheduled_max_retries(job_id))
            started.append(job_id)
        except RetryConflict as exc:
            log.warning("scheduled retry not started: %s", exc, extra={"job_id": job_id})
        except Exception as exc:  # the broker or Redis is away: keep it scheduled, try again soon
            svc.store.schedule_retry(job_id, time.time() + 30, svc.store.scheduled_max_retries(job_id))
            log.warning("scheduled retry failed to start (%s); trying again in 30 s", exc,
                        extra={"job_id": job_id})
    return started


def _reset_unit(svc: Services, job_id: str, number: int | None, record: dict[str, Any],
                task_id: str) -> bool:
    """Make a unit pending again for the new run, owned by `task_id` (unless it has succeeded)."""
    fresh = {k: v for k, v in record.items()
             if k not in ("error_message", "last_error", "segments_count", "file_path")}
    fresh["run"] = record.get("run", 1) + 1
    not_success = tuple(s for s in UnitStatus if s != UnitStatus.SUCCESS)
    return svc.store.update_unit_if(job_id, number, not_success, UnitStatus.PENDING, record=fresh,
                                    task_id=task_id)


def _is_live(record: dict[str, Any], settings: Settings) -> bool:
    """Whether a running or retrying unit can still be making progress."""
    last = (record.get("attempts") or [{}])[-1]
    now = time.time()
    if record.get("status") == UnitStatus.RUNNING:
        return now - parse_timestamp(last.get("started_at")) < settings.task_time_limit_s + 60
    if record.get("status") == UnitStatus.RETRYING:
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
    failed = [s["set_number"] for s in job["sets"] if s["status"] != UnitStatus.SUCCESS]
    if not failed:
        raise RetryConflict("nothing to retry: every set of this job succeeded")
    return failed
