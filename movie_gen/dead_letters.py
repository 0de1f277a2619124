"""Messages that RabbitMQ dead-lettered after their delivery limit: the unit fails, unrun.

A unit whose worker dies every time (killed for memory, a crash in a native library) would be
delivered for ever. With RabbitMQ the quorum queue counts the deliveries that were never
acknowledged and, past `x-delivery-limit`, moves the message to `movie_gen.dead`, adding an
`x-death` header (reason `delivery_limit`). The workers consume that queue too: the task finds
the header, records the unit failed with the reason, and fails, so the chord counts the set as
failed and the job ends `partial` instead of waiting for a unit that nobody will finish.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Task

from .attempts import WORKER_LOST
from .job_records import FINAL_STATES, SET_FAILED, SET_PENDING, SET_RETRYING, SET_RUNNING, now_iso
from .services import Services
from .unit_attempt import UnitFailed

log = logging.getLogger(__name__)

DELIVERY_LIMIT_REASON = "delivery_limit"


def delivery_limit_deaths(request: Any) -> list[dict[str, Any]]:
    """The `x-death` entries of a task's message that say it passed its delivery limit."""
    headers = getattr(request, "headers", None) or {}
    deaths = headers.get("x-death") or getattr(request, "x-death", None) or []
    return [d for d in deaths if isinstance(d, dict) and d.get("reason") == DELIVERY_LIMIT_REASON]


def refuse_if_dead_lettered(task: Task, svc: Services, job_id: str, set_number: int | None) -> None:
    """Fail the unit for good, without running it, when its message passed the delivery limit.

    Raises `UnitFailed` (the task fails, the chord counts it); returns when the message was not
    dead-lettered, or when the unit no longer waits for this message (it ended, it belongs to a
    later run, or its job ended): the task's usual path then reports that outcome.
    """
    deaths = delivery_limit_deaths(task.request)
    if not deaths:
        return
    what = f"set {set_number}" if set_number is not None else "the story bible"
    reason = (f"delivered {svc.settings.delivery_limit} times; its worker was lost every time "
              f"(x-delivery-limit)")
    message = f"Failed to generate {what}: {reason}"
    where = {"job_id": job_id, "set_number": set_number}
    for _ in range(3):  # compare-and-set: read again if an earlier delivery's write came between
        context = svc.store.unit_context(job_id, set_number)
        if context is None or context["state"] in FINAL_STATES:
            return
        record = context["record"]
        if record.get("task_id") not in (None, task.request.id) or \
                record["status"] not in (SET_PENDING, SET_RETRYING, SET_RUNNING):
            return
        if svc.store.update_unit_if(job_id, set_number, (SET_PENDING, SET_RETRYING, SET_RUNNING),
                                    SET_FAILED, record=_failed(record, reason, message),
                                    expected=record):
            log.error("%s; dead-lettered by the broker, not run again", message,
                      extra={**where, "queue": deaths[0].get("queue")})
            raise UnitFailed(message)
    raise UnitFailed(message)


def _failed(record: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    """The record with its open attempts closed as lost with their worker, and the reason."""
    entries = [dict(a) for a in record.get("attempts", [])]
    for entry in entries:
        if "finished_at" not in entry:
            entry.update(finished_at=now_iso(), outcome=WORKER_LOST, error_class=WORKER_LOST,
                         error="the worker was lost during this attempt")
    return {**record, "attempts": entries, "last_error": reason, "error_message": message}
