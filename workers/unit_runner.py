"""Run one unit of a job (the bible or a set) inside a task: rate limit, attempts, retry, give up."""

from __future__ import annotations

import logging
import random
from typing import Any, Callable

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from movie_gen import attempts
from movie_gen.errors import MovieGenError, PermanentLLMError, TransientLLMError
from movie_gen.job_store import SET_CANCELLED, SET_FAILED, SET_PENDING, SET_RETRYING, SET_RUNNING, SET_SUCCESS
from movie_gen.retry_policy import backoff_delay, error_class, is_retryable
from movie_gen.services import Services

log = logging.getLogger(__name__)


def _as_domain_error(exc: Exception) -> MovieGenError:
    if isinstance(exc, MovieGenError):
        return exc
    if isinstance(exc, SoftTimeLimitExceeded):
        return TransientLLMError("the attempt ran past the task's time limit")
    log.exception("unexpected error in a unit of work")
    return PermanentLLMError(f"unexpected error: {exc!r}")


def run_unit(task: Task, svc: Services, job_id: str, set_number: int | None, throttles: int,
             work: Callable[[int], dict[str, Any]],
             on_start: Callable[[], None] | None = None) -> dict[str, Any]:
    """One attempt of `work(attempt)`; schedules the next by `task.retry` or records the outcome.

    Never raises for a failed unit: the returned record says `failed`, so a chord callback runs.
    Waits for the global rate limit are retries too, but they do not use up the unit's budget.
    """
    record = attempts.load(svc.store, job_id, set_number)
    if record.get("task_id") not in (None, task.request.id):
        log.info("message of an earlier run ignored", extra={"job_id": job_id, "set_number": set_number})
        return record
    if record["status"] in (SET_SUCCESS, SET_FAILED, SET_CANCELLED):
        return record  # a redelivered message for a unit that already ended
    job = svc.store.get(job_id)
    if job is None:
        log.error("job record not found", extra={"job_id": job_id, "set_number": set_number})
        return {"set_number": set_number, "status": SET_FAILED, "error_message": "job record not found"}
    if job.get("cancelled_at"):  # `running` here means an earlier delivery died mid-attempt
        cancelled = svc.store.update_record_if(job_id, attempts.unit_field(set_number),
                                               (SET_PENDING, SET_RETRYING, SET_RUNNING),
                                               status=SET_CANCELLED)
        return cancelled or record
    max_retries = int(job.get("max_retries") or job["request"]["max_retries"])
    retries_used = task.request.retries - throttles
    wait = svc.limiter.try_acquire()
    if wait > 0:
        # Spread the waiting tasks out, so that they do not all wake at the same instant.
        wait = round(wait + random.uniform(0, min(1.0, wait)), 3)
        log.info("rate limit: next model call in %.2fs", wait,
                 extra={"job_id": job_id, "set_number": set_number, "delay_s": round(wait, 3)})
        svc.store.touch(job_id)
        raise task.retry(countdown=wait, kwargs={"throttles": throttles + 1})
    attempt = retries_used + 1
    started = attempts.start(svc.store, job_id, set_number, attempt, task.request.id)
    if started is None:
        log.info("unit was retried meanwhile; this message is done", extra={"job_id": job_id,
                                                                          "set_number": set_number})
        return record
    record = started
    if on_start is not None:
        on_start()
    try:
        fields = work(attempt)
    except Exception as raw:  # every failure becomes a recorded outcome
        exc = _as_domain_error(raw)
        kind = error_class(exc)
        if is_retryable(exc) and retries_used < max_retries:
            delay = backoff_delay(svc.settings, retries_used, exc)
            attempts.will_retry(svc.store, job_id, set_number, record, exc, kind, delay)
            raise task.retry(countdown=delay, exc=exc, kwargs={"throttles": throttles})
        return attempts.give_up(svc.store, job_id, set_number, record, exc, kind)
    return attempts.finish(svc.store, job_id, set_number, record, status=SET_SUCCESS, **fields)
