"""The task class of the bible and set tasks: Celery's retry, plus Retry-After and the model-call slot."""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

from celery import Task
from celery.exceptions import Ignore, Retry

from movie_gen.errors import LeaseLost
from movie_gen.execution.dead_letters import refuse_if_dead_lettered
from movie_gen.execution.leases import UnitLease
from movie_gen.execution.retry_policy import retry_countdown
from movie_gen.execution.unit_attempt import NothingToClaim, Unit, finished_outcome, run_attempt
from movie_gen.jobs.cancellation import finish_if_cancelled
from movie_gen.services import Services

# What a lost unit's message is sent again with (see movie_gen.execution.recovery): its place in the chord.
DELIVERY_OPTIONS = ("task_id", "root_id", "parent_id", "group_id", "group_index", "chord",
                    "link_error", "retries")

log = logging.getLogger(__name__)


class UnitTask(Task):
    """A task that writes one unit of a job; its retry policy is in its options (`unit_task_options`).

    Each message names the attempt it is for (`attempt`, 1 for the first): the attempt runs only
    if it can claim that number in the job store, so copies of a message cost nothing.
    """

    def retry(self, args: Any = None, kwargs: Any = None, exc: BaseException | None = None,
              throw: bool = True, eta: Any = None, countdown: float | None = None,
              max_retries: int | None = None, **options: Any) -> Any:
        """Celery's retry, for the next attempt, with the wait of the unit's retry policy
        (`movie_gen.execution.retry_policy`) recorded before the lease is given back."""
        countdown = retry_countdown(exc, countdown, self.retry_backoff_max)
        pending = getattr(exc, "pending_retry", None)
        if pending is not None:  # the attempt still holds its lease: record, then give it back
            kwargs = {k: v for k, v in (kwargs or self.request.kwargs or {}).items() if k != "slot_at"}
            kwargs["attempt"] = pending.attempt + 1
            try:
                pending.record_wait(exc, round(countdown or 0, 3))
            except LeaseLost:  # another delivery has the unit now: this one reports nothing
                raise Ignore() from None
            finally:
                pending.unit.lease.release()
        return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)

    def run_unit(self, svc: Services, job_id: str, set_number: int | None, slot_at: int | None,
                 attempt: int, work: Callable[[Unit, int], dict[str, Any]]) -> dict[str, Any]:
        """One delivery of a unit: take its lease, skip what needs no attempt, wait for the
        model-call slot, then claim and run the message's attempt. A delivery that finds the
        unit's lease held by a live attempt (the broker delivered the message twice) comes back
        later; one whose attempt was claimed already is ignored. Neither calls the model nor
        counts in the chord.
        """
        refuse_if_dead_lettered(self, svc, job_id, set_number)
        lease = UnitLease(svc.store.redis, job_id, set_number, svc.settings.lease_ttl_s, self.request.id)
        where = {"job_id": job_id, "set_number": set_number}
        if not lease.acquire():
            # A live attempt holds the unit: the broker gave this message back while it runs (a
            # dropped connection), or its worker has only just died. Come back later rather than
            # drop the message, which may be the only one left: then the unit has ended (this
            # delivery reports it), still runs (again later), or its holder is gone (it runs here).
            holder = lease.holder() or ""
            same_task = lease.holder_task(holder) in (self.request.id, None)
            log.info("a live attempt holds this unit (%s); this delivery backs off", holder, extra=where)
            self.send_again(svc, min(5.0, svc.settings.lease_ttl_s / 2) if same_task
                            else svc.settings.lease_ttl_s, where, f"unit held by {holder}")
        try:
            done = self._deliver(svc, lease, slot_at, attempt, work, where)
        except (LeaseLost, NothingToClaim) as exc:
            lease.release()
            log.warning("%s; this delivery stops without reporting", exc, extra=where)
            finish_if_cancelled(svc, job_id)
            raise Ignore() from None
        except BaseException as exc:
            if getattr(exc, "pending_retry", None) is None:
                lease.release()
                finish_if_cancelled(svc, job_id)
            raise  # a retry keeps the lease until `retry` has recorded its wait
        lease.release()
        finish_if_cancelled(svc, job_id)
        return done

    def _deliver(self, svc: Services, lease: UnitLease, slot_at: int | None, attempt: int,
                 work: Callable[[Unit, int], dict[str, Any]], where: dict[str, Any]) -> dict[str, Any]:
        job_id, set_number = where["job_id"], where["set_number"]
        unit = Unit(svc, job_id, set_number, self.request.id, lease,
                    svc.store.unit_context(job_id, set_number))
        if unit.context is None:
            log.error("job record not found", extra=where)
            return {"set_number": set_number, "status": "gone"}
        outcome = finished_outcome(unit)
        if outcome is not None:
            return {**outcome, "record": unit.context["record"]}
        if not svc.settings.broker_is_rabbitmq:  # RabbitMQ re-delivers a lost message itself
            options = self.request.as_execution_options()
            svc.store.put_delivery(job_id, set_number, {
                "args": list(self.request.args), "kwargs": dict(self.request.kwargs or {}),
                **{k: options[k] for k in DELIVERY_OPTIONS if options.get(k) is not None}})
        self.wait_for_model_slot(svc, slot_at, where)
        return {"record": run_attempt(unit, attempt, lambda number: work(unit, number))}

    def wait_for_model_slot(self, svc: Services, slot_at: int | None, where: dict[str, Any]) -> None:
        """Wait for this attempt's start time under LLM_RATE_LIMIT, reserved once per attempt.

        A short wait sleeps; a longer one sends this message again for its slot, keeping the
        retry count (Task.retry would count a retry) and the reservation. So an attempt takes
        at most two messages, and rate-limit waits never use up the unit's retries.
        """
        settings = svc.settings
        if settings.llm_provider != "openai" and not settings.offline_latency_s:
            return  # the offline writer calls no model, unless it simulates one
        if slot_at is None:
            slot = svc.limiter.reserve()
            slot_at, wait = slot.at_ms, slot.wait_s
        else:
            wait = svc.limiter.wait_for(slot_at)
        if wait > settings.llm_rate_wait_max_s:
            self.send_again(svc, min(wait, settings.retry_backoff_max), where,
                            f"model call slot in {wait:.2f}s", slot_at=slot_at)
        if wait > 0:
            log.info("rate limit: model call in %.2fs", wait, extra={**where, "delay_s": round(wait, 3)})
            time.sleep(wait)

    def send_again(self, svc: Services, countdown: float, where: dict[str, Any], why: str,
                   **kwargs: Any) -> None:
        """Defer this message by `countdown` seconds: Celery's retry message (same task id, same
        place in the chord, same attempt), without counting a retry, since no attempt was made.
        Raises Retry to end this delivery."""
        countdown = round(countdown, 3)
        log.info("%s; message scheduled again in %ss", why, countdown, extra={**where, "delay_s": countdown})
        svc.store.touch(where["job_id"])  # the job is alive (see STALL_TIMEOUT_S)
        signature = self.signature_from_request(
            self.request, self.request.args, {**self.request.kwargs, **kwargs}, countdown=countdown)
        signature.apply_async()
        raise Retry(f"{why}: sent again in {countdown}s", when=countdown, sig=signature)
