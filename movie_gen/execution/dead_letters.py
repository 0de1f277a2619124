"""Messages that RabbitMQ dead-lettered after their delivery limit: the unit fails, unrun.

A unit whose worker dies every time (killed for memory, a crash in a native library) would be
delivered for ever. With RabbitMQ the quorum queue counts the deliveries that were never
acknowledged and, past `x-delivery-limit`, moves the message to `movie_gen.dead`, adding an
`x-death` header (reason `delivery_limit`). The workers consume that queue too: the task finds
the header, records the unit failed with the reason, and fails, so the chord counts the set as
failed and the job ends `partial` instead of waiting for a unit that nobody will finish.

The broker counts every message given back, also those a dropped connection returned while their
attempt still ran; so the unit fails only if no live attempt holds its lease and its own history
shows DELIVERY_LIMIT deliveries that died.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from celery import Task

from movie_gen.execution.attempts import WORKER_LOST
from movie_gen.execution.leases import holder_is_dead, lease_key
from movie_gen.execution.unit_attempt import UnitFailed
from movie_gen.services import Services
from movie_gen.store.job_model import FINAL_STATES, UNFINISHED, UnitStatus, now_iso

log = logging.getLogger(__name__)

DELIVERY_LIMIT_REASON = "delivery_limit"


def delivery_limit_deaths(request: Any) -> list[dict[str, Any]]:
    """The `x-death` entries of a task's message that say it passed its delivery limit."""
    headers = getattr(request, "headers", None) or {}
    deaths = headers.get("x-death") or getattr(request, "x-death", None) or []
    return [d for d in deaths if isinstance(d, dict) and d.get("reason") == DELIVERY_LIMIT_REASON]


def refuse_if_dead_lettered(task: Task, svc: Services, job_id: str, set_number: int | None) -> None:
    """Fail the unit for good, without running it, when its message passed the delivery limit.

    Raises `UnitFailed` (the task fails, the chord counts it). Returns, leaving the delivery to
    the task's usual path, when the message was not dead-lettered, when the unit no longer waits
    for it (it ended, it belongs to a later run, its job ended), when a live attempt holds the
    unit (the broker also counts the messages a dropped connection gave back: that delivery
    backs off), or when fewer than DELIVERY_LIMIT deliveries of the unit's attempt died (it runs).
    """
    deaths = delivery_limit_deaths(task.request)
    if not deaths:
        return
    where = {"job_id": job_id, "set_number": set_number}
    what = f"set {set_number}" if set_number is not None else "the story bible"
    for _ in range(3):  # compare-and-set: read again if another write came between
        context = svc.store.unit_context(job_id, set_number)
        if context is None or context["state"] in FINAL_STATES:
            return
        record = context["record"]
        if record.get("task_id") not in (None, task.request.id) or \
                record["status"] not in UNFINISHED:
            return
        if _live_holder(svc, job_id, set_number):
            log.info("dead-lettered message of a unit that a live attempt holds: left to it", extra=where)
            return
        lost = lost_deliveries(record)
        if lost < svc.settings.delivery_limit:
            log.warning("dead-lettered message, but %d of its deliveries died: it runs", lost, extra=where)
            return
        reason = (f"delivered {lost} time{'s' if lost != 1 else ''}; its worker was lost every time "
                  "(x-delivery-limit)")
        message = f"Failed to generate {what}: {reason}"
        if svc.store.update_unit_if(job_id, set_number, UNFINISHED,
                                    UnitStatus.FAILED, record=_failed(record, reason, message),
                                    expected=record):
            log.error("%s; dead-lettered by the broker, not run again", message,
                      extra={**where, "queue": deaths[0].get("queue")})
            raise UnitFailed(message)
    raise UnitFailed(f"Failed to generate {what}: its message passed the broker's delivery limit "
                     "(x-delivery-limit)")


def lost_deliveries(record: dict[str, Any]) -> int:
    """The deliveries of the unit's latest attempt that died with their worker (recorded as
    `worker_lost`, or never finished)."""
    entries = record.get("attempts") or []
    if not entries:
        return 0
    current = (entries[-1].get("run", 1), entries[-1]["attempt"])
    return sum(1 for a in entries if (a.get("run", 1), a["attempt"]) == current
               and (a.get("outcome") == WORKER_LOST or "finished_at" not in a))


def _live_holder(svc: Services, job_id: str, set_number: int | None) -> bool:
    """Whether a live attempt holds the unit's lease. A holder on this machine is checked by its
    pid; one on another machine is alive if it renews the lease before the lease lapses."""
    client, key = svc.store.redis, lease_key(job_id, set_number)
    holder = client.get(key)
    if not holder or holder_is_dead(holder):
        return False
    if holder.partition(":")[0] == socket.gethostname():
        return True
    deadline = time.monotonic() + svc.settings.lease_ttl_s + 1
    last = client.pttl(key)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        if client.get(key) != holder:
            return False  # it lapsed (or was dropped): its holder is gone
        ttl = client.pttl(key)
        if ttl > last:
            return True  # renewed by its heartbeat
        last = ttl
    return False


def _failed(record: dict[str, Any], reason: str, message: str) -> dict[str, Any]:
    """The record with its open attempts closed as lost with their worker, and the reason."""
    entries = [dict(a) for a in record.get("attempts", [])]
    for entry in entries:
        if "finished_at" not in entry:
            entry.update(finished_at=now_iso(), outcome=WORKER_LOST, error_class=WORKER_LOST,
                         error="the worker was lost during this attempt")
    return {**record, "attempts": entries, "last_error": reason, "error_message": message}
