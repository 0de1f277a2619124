"""Recovery of units whose worker died, for the Redis broker: a running unit's message would come
back only after the broker's visibility timeout (an hour or more). Every worker runs this check.

Only a unit that is *running* is watched: its lease puts it in the watch set and its heartbeat
keeps it there. A unit is taken for lost only when its worker is gone: the lease's holder was a
process of this machine that no longer exists, or the lease stayed unrenewed for a whole time
to live after it lapsed (a live attempt takes a lapsed lease again within a third of that). Its
message is then sent again, with the same task id and place in the chord, to run the same
attempt number, so the budget is not spent twice (see `JobStore.claim_attempt`). A message that
waits for its retry or for a worker is never copied: it is not lost. A unit whose task the
worker already reported failed (a hard time limit) is recorded failed instead of sent again.

RabbitMQ returns a dead consumer's messages at once and counts their deliveries, so with an
`amqp://` broker nothing is sent from here.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from celery import Celery
from celery import states as celery_states

from movie_gen.execution.canvas import BIBLE_TASK, SET_TASK
from movie_gen.execution.leases import WATCH, holder_is_dead, lease_key, watch
from movie_gen.services import Services
from movie_gen.store.job_model import BIBLE_UNIT, FINAL_STATES, UnitStatus

log = logging.getLogger(__name__)


def recover_lost_units(svc: Services, app: Celery, limit: int = 100) -> list[str]:
    """Send again the overdue running units whose worker is gone; returns them as `job:unit`."""
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


def _worker_gone(svc: Services, job_id: str, set_number: int | None) -> bool:
    """Whether the unit's holder is gone: a dead process of this machine, or a lease that stayed
    lapsed for a whole time to live (the first sighting only arms that check)."""
    client, key, ttl = svc.store.redis, lease_key(job_id, set_number), svc.settings.lease_ttl_s
    holder = client.get(key)
    if holder:
        if holder_is_dead(holder):
            return True
        watch(client, job_id, set_number, ttl)  # alive: its heartbeat watches it again
        return False
    if client.set(f"{key}:lapsed", "1", nx=True, px=int(3 * ttl * 1000)):
        watch(client, job_id, set_number, ttl)  # a live holder takes a lapsed lease again by then
        return False
    client.delete(f"{key}:lapsed")
    return True


def _send_again_if_lost(svc: Services, app: Celery, job_id: str, set_number: int | None) -> bool:
    context = svc.store.unit_context(job_id, set_number)
    if context is None or context["state"] in FINAL_STATES:
        return False  # gone, or the job has ended: nothing may write this unit any more
    record = context["record"]
    if record["status"] != UnitStatus.RUNNING or not _worker_gone(svc, job_id, set_number):
        return False  # it ended, waits for a message that is not lost, or its worker lives
    where = {"job_id": job_id, "set_number": set_number}
    meta = app.backend.get_task_meta(record.get("task_id"))
    if meta.get("status") in celery_states.PROPAGATE_STATES:  # e.g. killed at the hard time limit
        error = f"the task ended without an outcome: {meta.get('result')!r}"
        svc.store.update_unit_if(job_id, set_number, (UnitStatus.RUNNING,), UnitStatus.FAILED,
                                 record={**record, "error_message": error}, expected=record)
        log.warning("unit's task already failed (%s): recorded failed, not sent again",
                    meta.get("status"), extra=where)
        return False
    if svc.settings.broker_is_rabbitmq:
        return False  # the broker gives a dead consumer's messages back itself
    delivery = svc.store.get_delivery(job_id, set_number)
    if delivery is None or delivery.get("task_id") != record.get("task_id"):
        return False  # its message of this run was never taken: it is not lost
    last = (record.get("attempts") or [{"attempt": 1}])[-1]
    options = {k: v for k, v in delivery.items() if k not in ("args", "kwargs")}
    kwargs = {k: v for k, v in (delivery.get("kwargs") or {}).items() if k != "slot_at"}
    app.send_task(SET_TASK if set_number is not None else BIBLE_TASK, args=delivery["args"],
                  kwargs={**kwargs, "attempt": int(last["attempt"])}, ignore_result=True, **options)
    log.warning("unit lost with its worker: sent again", extra=where)
    return True


def start_recovery_thread(app: Celery, svc: Services,
                          also: Callable[[Services, Celery], object] | None = None) -> threading.Thread:
    """Check every RECOVERY_INTERVAL_S, for the life of the worker process: lost units, then
    `also` (the workers pass the retries scheduled for when a spent model quota is back)."""
    def loop() -> None:
        while True:
            time.sleep(svc.settings.recovery_interval_s)
            try:
                recover_lost_units(svc, app)
                if also is not None:
                    also(svc, app)
            except Exception as exc:  # Redis or the broker is away: try again next round
                log.warning("recovery check failed: %s", exc)

    thread = threading.Thread(target=loop, name="movie-gen recovery", daemon=True)
    thread.start()
    return thread
