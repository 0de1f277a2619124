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

from .job_records import BIBLE_UNIT, SET_RETRYING, SET_RUNNING
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
        holder = client.get(lease_key(job_id, set_number))
        if holder and not holder_is_dead(holder):
            watch(client, job_id, set_number, svc.settings.lease_ttl_s)  # alive: a late heartbeat
            continue
        record = svc.store.get_record(job_id, set_number)
        delivery = svc.store.get_delivery(job_id, set_number)
        if record is None or delivery is None or record["status"] not in (SET_RUNNING, SET_RETRYING):
            continue
        if record.get("task_id") != delivery.get("task_id"):
            continue  # the unit was retried since: its new run has its own messages
        options = {k: v for k, v in delivery.items() if k != "args"}
        if record["status"] == SET_RETRYING:
            options["retries"] = int(options.get("retries", 0)) + 1
        app.send_task(SET_TASK if set_number is not None else BIBLE_TASK, args=delivery["args"],
                      ignore_result=True, **options)
        watch(client, job_id, set_number, 3 * svc.settings.lease_ttl_s)
        log.warning("unit lost with its worker: sent again", extra={"job_id": job_id,
                                                                 "set_number": set_number})
        recovered.append(member)
    return recovered


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
