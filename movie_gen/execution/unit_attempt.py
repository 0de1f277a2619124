"""One attempt at a unit of a job (the story bible or a set), with its record kept in the job store.

The Celery task around it owns retrying (`autoretry_for`); this module decides what an attempt
means for the job: a unit whose lease another delivery holds is left alone, a stale or repeated
message does nothing, a cancelled job cancels the unit, a unit whose worker died too often fails,
and an error either goes back to Celery for a retry (within the job's own budget, counted by the
attempts claimed in the job store) or fails the unit for good with the error text the job reports.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable

import redis
from celery.exceptions import SoftTimeLimitExceeded

from movie_gen.errors import (
    LeaseLost,
    MovieGenError,
    PermanentLLMError,
    QuotaExhausted,
    StoreUnavailable,
    TransientLLMError,
)
from movie_gen.execution import attempts
from movie_gen.execution.leases import UnitLease
from movie_gen.execution.retry_policy import attempts_allowed, error_class, may_retry
from movie_gen.services import Services
from movie_gen.store.job_model import UNFINISHED, UnitStatus

log = logging.getLogger(__name__)


class UnitFailed(Exception):
    """A unit failed for good: "Failed to generate set N after K attempts: …" (not retried)."""


class NothingToClaim(Exception):
    """This delivery's attempt was claimed already, is past the budget, or its unit moved on."""


class WorkerLost(MovieGenError):
    """The unit's deliveries kept dying with their worker (e.g. killed for memory)."""

    kind = "worker_lost"


@dataclass
class Unit:
    """A unit as one delivery found it, under its lease: its job's context and its record."""

    svc: Services
    job_id: str
    set_number: int | None
    task_id: str
    lease: UnitLease
    context: dict[str, Any] | None = None

    @property
    def where(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "set_number": self.set_number}

    @property
    def fence(self) -> tuple[str, str]:
        """The lease that every write of this attempt must still hold."""
        return self.lease.key, self.lease.token


@dataclass
class PendingRetry:
    """What a retry records once Celery has chosen its wait (attached to the retried error)."""

    unit: Unit
    record: dict[str, Any]
    kind: str
    attempt: int

    def record_wait(self, error: BaseException, delay_s: float) -> None:
        unit = self.unit
        attempts.will_retry(unit.svc.store, unit.job_id, unit.set_number, self.record, error,
                            self.kind, delay_s, unit.fence)


def finished_outcome(unit: Unit) -> dict[str, Any] | None:
    """The outcome of a unit that needs no attempt (stale, repeated or cancelled), else None.

    A unit that already ended reports its outcome again (a failure raises): the chord counts
    each task once (Celery keys its chord parts by task id), and a task whose worker died
    before it reported is counted now.
    """
    svc, record, context = unit.svc, unit.context["record"], unit.context
    if record.get("task_id") not in (None, unit.task_id):
        log.info("message of an earlier run ignored", extra=unit.where)
        return {"set_number": unit.set_number, "status": "superseded"}
    if record["status"] in (UnitStatus.SUCCESS, UnitStatus.FAILED, UnitStatus.CANCELLED):
        if record["status"] == UnitStatus.FAILED:
            raise UnitFailed(record.get("error_message") or "failed")
        return {"set_number": unit.set_number, "status": record["status"]}
    if context.get("quota_not_before"):  # the quota ran out in another unit: no call is made
        message = f"Set {unit.set_number} was not attempted: {context['quota_error']}" \
            if unit.set_number is not None else f"The story bible was not attempted: {context['quota_error']}"
        svc.store.update_unit_if(unit.job_id, unit.set_number, UNFINISHED, UnitStatus.FAILED,
                                 record={**record, "error_message": message}, expected=record)
        raise UnitFailed(message)
    if context.get("cancelled_at"):  # `running` here means an earlier delivery died mid-attempt
        svc.store.update_unit_if(unit.job_id, unit.set_number, UNFINISHED,
                                 UnitStatus.CANCELLED)
        return {"set_number": unit.set_number, "status": UnitStatus.CANCELLED}
    return None


def run_attempt(unit: Unit, attempt: int, work: Callable[[int], dict[str, Any]]) -> dict[str, Any]:
    """Attempt `attempt` of the unit: its record on success; raises to retry or to fail it.

    The attempt starts only by claiming its number in the job store, so the job's budget
    (`max_retries + 1` attempts a run) is counted where the attempts are recorded, whatever copies
    of a message the broker, recovery or a client sends: a copy finds its attempt claimed and
    raises `NothingToClaim`. A retryable error is re-raised, carrying a `PendingRetry`, while the
    budget allows; Celery then schedules the retry. Otherwise `UnitFailed` ends the unit.
    """
    svc, job_id, set_number, context = unit.svc, unit.job_id, unit.set_number, unit.context
    if attempt > attempts_allowed(context):
        raise NothingToClaim(f"attempt {attempt} is past the budget of {attempts_allowed(context)}")
    code, record, lost = attempts.start(svc.store, job_id, set_number, context["record"], attempt,
                                        unit.task_id, unit.fence)
    if code == -3:  # cancelled between the check and the claim (`running`: its worker died)
        svc.store.update_unit_if(job_id, set_number, UNFINISHED,
                                 UnitStatus.CANCELLED)
        return {**context["record"], "status": UnitStatus.CANCELLED}
    if code == 0:
        raise NothingToClaim(f"attempt {attempt} was claimed already, or the unit has moved on")
    if lost >= svc.settings.delivery_limit:
        exc: MovieGenError = WorkerLost(f"worker lost {lost} times during this "
                                        f"{'set' if set_number is not None else 'story bible'}")
        return _fail(unit, record, exc)
    try:
        fields = work(attempt)
    except LeaseLost:
        raise
    except Exception as raw:  # every failure becomes a recorded outcome
        exc = _as_domain_error(raw)
        retry = may_retry(context, attempt, exc)
        if retry and svc.store.is_cancelled(job_id):
            return attempts.finish(svc.store, job_id, set_number, record, status=UnitStatus.CANCELLED,
                                   error=exc, error_class=error_class(exc), lease=unit.fence)
        if retry:
            exc.pending_retry = PendingRetry(unit, record, error_class(exc), attempt)  # type: ignore[attr-defined]
            raise exc from (None if exc is raw else raw)
        if isinstance(exc, QuotaExhausted):  # no other unit of the job calls the model now
            svc.store.stop_for_quota(job_id, exc.not_before_iso, quota_message(exc.not_before_iso))
        return _fail(unit, record, exc)
    return attempts.finish(svc.store, job_id, set_number, record, status=UnitStatus.SUCCESS,
                           lease=unit.fence, **fields)


def quota_message(not_before: str) -> str:
    """What a job whose model quota ran out says to its user."""
    return (f"the model's quota or billing limit is exhausted; retry after {not_before} "
            "(POST /retry-failed-story-sets with \"when\": \"not_before\", or movie-gen retry --when-ready)")


def _fail(unit: Unit, record: dict[str, Any], exc: MovieGenError) -> dict[str, Any]:
    record = attempts.give_up(unit.svc.store, unit.job_id, unit.set_number, record, exc,
                              error_class(exc), unit.fence)
    raise UnitFailed(record["error_message"]) from exc


def _as_domain_error(exc: Exception) -> MovieGenError:
    if isinstance(exc, MovieGenError):
        return exc
    if isinstance(exc, SoftTimeLimitExceeded):
        return TransientLLMError("the attempt ran past the task's time limit")
    if isinstance(exc, redis.RedisError):
        return StoreUnavailable(f"the job store did not answer: {exc}")
    log.exception("unexpected error in a unit of work")
    return PermanentLLMError(f"unexpected error: {exc!r}")
