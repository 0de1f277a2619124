"""Cancel a running job: revoke what has not started, let a running set finish, keep what is written."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from .assembly import finish_job
from .job_store import SET_CANCELLED, SET_PENDING, SET_RETRYING
from .services import Services

log = logging.getLogger(__name__)
NOT_STARTED = (SET_PENDING, SET_RETRYING)


class CancelConflict(Exception):
    """The job has already ended."""


def cancel_job(svc: Services, celery: Celery, job: dict[str, Any]) -> dict[str, Any] | None:
    """Mark the job cancelled, revoke its waiting tasks, and end it as `cancelled`."""
    job_id = job["job_id"]
    if not svc.store.request_cancel(job_id):
        state = (svc.store.get(job_id) or job)["state"]
        raise CancelConflict(f"the job has already ended (state '{state}')")
    job = svc.store.get(job_id) or job  # every set, not one page
    task_ids = [s["task_id"] for s in job["sets"] if s["status"] in NOT_STARTED and s.get("task_id")]
    bible = job.get("bible_record") or {}
    if bible.get("status") in NOT_STARTED and bible.get("task_id"):
        task_ids.append(bible["task_id"])
    if task_ids:
        celery.control.revoke(task_ids)
    for record in job["sets"]:  # only those still waiting: a set may have finished meanwhile
        svc.store.update_unit_if(job_id, record["set_number"], NOT_STARTED, SET_CANCELLED)
    svc.store.update_unit_if(job_id, None, NOT_STARTED, SET_CANCELLED)
    log.info("job cancelled; %d waiting tasks revoked", len(task_ids), extra={"job_id": job_id})
    return finish_job(svc, job_id, run=int(job.get("run") or 1))
