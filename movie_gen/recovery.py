"""Recovery of units whose worker died: their lease lapsed, and their message would come back only
after the broker's visibility timeout (an hour or more with Redis). Every worker runs this check.

A running unit is watched (a sorted set scored by when to look again) while its lease is renewed;
a unit waiting for a retry is watched until its retry is due. When a watched unit is overdue and
no live attempt holds its lease, the check sends its message again with the same task id and the
same place in the chord, so the job goes on. If the original message comes back later, the lease
and the unit's record make it harmless. The visibility timeout stays the backstop.
"""

from __future__ import annotations

import logging
import threading
import time

from celery import Celery

from .job_records import BIBLE_UNIT, CANCELLED, FINAL_STATES, SET_RETRYING, SET_RUNNING
from .leases import WATCH, holder_is_dead, lease_key, watch
from .pipeline import BIBLE_TASK, SET_TASK
from .retries import run_due_retries
from .services import Services

log = logging.getLogger(__name__)


def recover_lost_units(svc: Services, app: Celery, limit: int = 100) -> list[str]:
    """Send again the overdue units that no live attempt holds; returns them as `job:unit`."""
    client = svc.store.redis
    recovered = []
    for member in client.zrangebyscore(WATCH, "-inf", time.time(), start=0, num=limit):
        if not client.zrem(WATCH, member):
            continue  # another worker's check took it
        job_id, _, unit = member.partition(":")
        set_number = None if unit == BIBLE_UNIT else int(unit)
        try:
            if _send_again_if_lost(svc, app, job_id, set_number):
                recovered.append(member)
        except Exception as exc:  # the broker or Redis is away: look again next round
            watch(client, job_id, set_number, svc.settings.recovery_interval_s)
            log.warning("could not send a lost unit again: %s", exc,
                        extra={"job_id": job_id, "set_number": set_number})
    return recovered


def _send_again_if_lost(svc: Services, app: Celery, job_id: str, set_number: int | None) -> bool:
    client = svc.store.redis
    holder = client.get(lease_key(job_id, set_number))
    if holder and not holder_is_dead(holder):
        watch(client, job_id, set_number, svc.settings.lease_ttl_s)  # alive: a late heartbeat
        return False
    context = svc.store.unit_context(job_id, set_number)
    delivery = svc.store.get_delivery(job_id, set_number)
    if context is None or delivery is None:
        return False
    record = context["record"]
    if record["status"] not in (SET_RUNNING, SET_RETRYING) or record.get("task_id") != delivery.get("task_id"):
        return False  # it ended, or it was retried since: its new run has its own messages
    if context["state"] in FINAL_STATES and context["state"] != CANCELLED:
        return False  # the job has ended: nothing may write this unit any more
    last = (record.get("attempts") or [{"attempt": 1}])[-1]
    options = {k: v for k, v in delivery.items() if k != "args"}
    # a running unit runs its attempt again; a retrying one starts its next attempt
    options["retries"] = last["attempt"] - (1 if record["status"] == SET_RUNNING else 0)
    app.send_task(SET_TASK if set_number is not None else BIBLE_TASK, args=delivery["args"],
                  ignore_result=True, **options)
    watch(client, job_id, set_number, 3 * svc.settings.lease_ttl_s)
    log.warning("unit lost with its worker: sent again", extra={"job_id": job_id, "set_number": set_number})
    return True


def start_recovery_thread(app: Celery, svc: Services) -> threading.Thread:
    """Check every RECOVERY_INTERVAL_S, for the life of the worker process: lost units, and
    retries scheduled for when a spent model quota is back."""
    def loop() -> None:
        while True:
            time.sleep(svc.settings.recovery_interval_s)
            try:
                recover_lost_units(svc, app)
                run_due_retries(svc, app)
            except Exception as exc:  # Redis or the broker is away: try again next round
                log.warning("recovery check failed: %s", exc)

    thread = threading.Thread(target=loop, name="movie-gen recovery", daemon=True)
    thread.start()
    return thread
