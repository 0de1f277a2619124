"""One attempt at a unit of a job (the story bible or a set), with its record kept in the job store.

The Celery task around it owns retrying (`autoretry_for`); this module decides what an attempt
means for the job: a stale or repeated message does nothing, a cancelled job cancels the unit,
and an error either goes back to Celery for a retry (within the job's own budget) or fails the
unit for good with the error text the job reports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

from celery.exceptions import SoftTimeLimitExceeded

from . import attempts
from .errors import RETRYABLE, MovieGenError, PermanentLLMError, TransientLLMError
from .job_store import (
    SET_CANCELLED,
    SET_FAILED,
    SET_PENDING,
    SET_RETRYING,
    SET_RUNNING,
    SET_SUCCESS,
)
from .retry_policy import error_class
from .services import Services

log = logging.getLogger(__name__)


class UnitFailed(Exception):
    """A unit failed for good: "Failed to generate set N after K attempts: …" (not retried)."""


@dataclass
class Unit:
    """A unit as one message found it: its job's context, or the outcome that ends the message."""

    job_id: str
    set_number: int | None
    context: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None


@dataclass
class PendingRetry:
    """What a retry records once Celery has chosen its wait (attached to the retried error)."""

    svc: Services
    unit: Unit
    record: dict[str, Any]
    kind: str

    def record_wait(self, error: BaseException, delay_s: float) -> None:
        attempts.will_retry(self.svc.store, self.unit.job_id, self.unit.set_number, self.record,
                            error, self.kind, delay_s)


def open_unit(svc: Services, job_id: str, set_number: int | None, task_id: str) -> Unit:
    """Read the unit's context; `outcome` is set when this message has nothing (more) to do."""
    unit = Unit(job_id, set_number)
    where = {"job_id": job_id, "set_number": set_number}
    context = svc.store.unit_context(job_id, set_number)
    if context is None:
        log.error("job record not found", extra=where)
        unit.outcome = {"set_number": set_number, "status": "gone"}
        return unit
    record = context["record"]
    if record.get("task_id") not in (None, task_id):
        log.info("message of an earlier run ignored", extra=where)
        unit.outcome = {"set_number": set_number, "status": "superseded"}
    elif record["status"] in (SET_SUCCESS, SET_FAILED, SET_CANCELLED):
        unit.outcome = {"set_number": set_number, "status": record["status"]}  # a redelivery
    elif context.get("cancelled_at"):  # `running` here means an earlier delivery died mid-attempt
        svc.store.update_unit_if(job_id, set_number, (SET_PENDING, SET_RETRYING, SET_RUNNING),
                                 SET_CANCELLED)
        unit.outcome = {"set_number": set_number, "status": SET_CANCELLED}
    unit.context = context
    return unit


def run_attempt(svc: Services, unit: Unit, task_id: str, retries: int,
                work: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """Attempt `retries + 1` of the unit: its record on success; raises to retry or to fail it.

    A retryable error is re-raised, carrying a `PendingRetry`, while the job's `max_retries`
    allows; Celery then schedules the retry. Otherwise `UnitFailed` ends the unit.
    """
    job_id, set_number, context = unit.job_id, unit.set_number, unit.context
    assert context is not None
    where = {"job_id": job_id, "set_number": set_number}
    record = attempts.start(svc.store, job_id, set_number, context["record"], retries + 1, task_id)
    if record is None:
        log.info("unit was retried meanwhile; this message is done", extra=where)
        return {"set_number": set_number, "status": "superseded"}
    try:
        fields = work(retries + 1)
    except Exception as raw:  # every failure becomes a recorded outcome
        exc = _as_domain_error(raw)
        kind = error_class(exc)
        budget = int(context.get("max_retries") or context["request"]["max_retries"])
        if isinstance(exc, RETRYABLE) and retries < budget:
            exc.pending_retry = PendingRetry(svc, unit, record, kind)  # type: ignore[attr-defined]
            raise exc from (None if exc is raw else raw)
        record = attempts.give_up(svc.store, job_id, set_number, record, exc, kind)
        raise UnitFailed(record["error_message"]) from exc
    return attempts.finish(svc.store, job_id, set_number, record, status=SET_SUCCESS, **fields)


def _as_domain_error(exc: Exception) -> MovieGenError:
    if isinstance(exc, MovieGenError):
        return exc
    if isinstance(exc, SoftTimeLimitExceeded):
        return TransientLLMError("the attempt ran past the task's time limit")
    log.exception("unexpected error in a unit of work")
    return PermanentLLMError(f"unexpected error: {exc!r}")
