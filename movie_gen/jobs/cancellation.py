"""Cancel a running job: revoke what has not started, let a running unit finish, keep what is written.

A job seen final never changes. So a cancel that finds units running leaves the job `cancelling`;
no new attempt starts (the claim refuses it), and the last running unit to stop ends the job
`cancelled`. A cancel that finds nothing running ends it at once.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery

from movie_gen.jobs.assembly import finish_job
from movie_gen.services import Services
from movie_gen.store.job_model import UnitStatus

log = logging.getLogger(__name__)
NOT_STARTED = (UnitStatus.PENDING, UnitStatus.RETRYING)


class CancelConflict(Exception):
    """The job has already ended."""


def cancel_job(svc: Services, celery: Celery, job: dict[str, Any]) -> dict[str, Any] | None:
    """Mark the job cancelling, revoke its waiting tasks, and end it once no unit runs."""
    job_id = job["job_id"]
    if not svc.store.request_cancel(job_id):
        state = (svc.store.get(job_id) or job)["state"]
        raise CancelConflict(f"the job has already ended or is being cancelled (state '{state}')")
    job = svc.store.get(job_id) or job  # every set, not one page
    task_ids = [s["task_id"] for s in job["sets"] if s["status"] in NOT_STARTED and s.get("task_id")]
    bible = job.get("bible_record") or {}
    if bible.get("status") in NOT_STARTED and bible.get("task_id"):
        task_ids.append(bible["task_id"])
    if task_ids:
        celery.control.revoke(task_ids)
    for record in job["sets"]:  # only those still waiting: a set may have finished meanwhile
        svc.store.update_unit_if(job_id, record["set_number"], NOT_STARTED, UnitStatus.CANCELLED)
    svc.store.update_unit_if(job_id, None, NOT_STARTED, UnitStatus.CANCELLED)
    log.info("job cancelling; %d waiting tasks revoked", len(task_ids), extra={"job_id": job_id})
    return finish_if_cancelled(svc, job_id)


def finish_if_cancelled(svc: Services, job_id: str) -> dict[str, Any] | None:
    """End a `cancelling` job as `cancelled` once none of its units runs (every unit calls this
    when it stops); the result, or None when the job is not cancelling or a unit still runs."""
    if not svc.store.is_cancelled(job_id) or svc.store.running_units(job_id):
        return None
    return finish_job(svc, job_id)
