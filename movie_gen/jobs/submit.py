"""Jobs as the API sees them: submit one, and look one up (restored from its files if Redis lost it)."""

from __future__ import annotations

import logging
import re
from typing import Any

from celery import Celery

from movie_gen.execution.canvas import enqueue_job, new_task_id
from movie_gen.services import Services
from movie_gen.storage import durable_record
from movie_gen.store.job_model import FINAL_STATES, UnitStatus, new_job_id
from movie_gen.story.story_bible import plan_sets

log = logging.getLogger(__name__)
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
SETS_PAGE = 100  # sets shown by the job URL; the rest are paged at /jobs/<id>/sets


def submit_job(svc: Services, celery: Celery, request: dict[str, Any], owner: str | None = None,
               job_id: str | None = None) -> str:
    """Store a new job and enqueue its pipeline; returns the job id."""
    job_id = job_id or new_job_id()
    plans = plan_sets(request["total_segments"], request["segments_per_set"])
    task_ids = {p.set_number: new_task_id() for p in plans}
    bible_task_id = new_task_id()
    svc.store.create(job_id, request, [
        {"set_number": p.set_number, "first_segment": p.first, "last_segment": p.last,
         "task_id": task_ids[p.set_number]} for p in plans], svc.settings.llm_provider, owner,
        bible_record={"status": "pending", "attempts": [], "task_id": bible_task_id})
    try:
        enqueue_job(celery, job_id, 1, task_ids, bible_task_id)
    except Exception as exc:  # the broker is down: the job must not sit in `queued` forever
        svc.store.set_state(job_id, "failed", error=f"could not enqueue the job: {exc}")
        raise
    log.info("job queued: %d segments in %d sets", request["total_segments"], len(plans),
             extra={"job_id": job_id})
    return job_id


def find_job(svc: Services, job_id: str, owner: str | None = None, first_set: int = 1,
             limit: int = SETS_PAGE) -> dict[str, Any] | None:
    """The job with one page of its sets (only if `owner` created it, when API keys are on).

    Restored from disk if Redis lost it.
    """
    if not _JOB_ID.match(job_id):
        return None
    job = svc.store.get_page(job_id, first_set, limit)
    if job is None and _restore(svc, job_id):
        job = svc.store.get_page(job_id, first_set, limit)
    if job is None or (owner is not None and job.get("owner") != owner):
        return None
    return job


def _restore(svc: Services, job_id: str) -> dict[str, Any] | None:
    """The job from its metadata file in the output store, put back in Redis after its key expired."""
    snapshot = durable_record.load_snapshot(svc.storage, job_id)
    if snapshot is None:
        return None
    if snapshot.get("state") not in FINAL_STATES:
        _settle_unfinished(svc, snapshot)
    svc.store.restore(snapshot)
    log.warning("job restored from its metadata file", extra={"job_id": job_id})
    return snapshot


def _settle_unfinished(svc: Services, snapshot: dict[str, Any]) -> None:
    """A job lost while it ran comes back `failed` and retryable, knowing every set on disk.

    Sets written after the metadata file count as written (their files say so, with their token
    usage); no unit stays `running` or `retrying`, since nothing runs it any more.
    """
    snapshot.update(state="failed", error="the job's live record was lost before it finished; retry it")
    usage = snapshot.setdefault("token_usage", {})
    bible = snapshot.get("bible_record") or {}
    bible["status"] = UnitStatus.SUCCESS if snapshot.get("bible") else UnitStatus.FAILED
    snapshot["bible_record"] = bible
    for record in snapshot.get("sets", []):
        if record.get("status") == UnitStatus.SUCCESS:
            continue
        found = snapshot.get("file_stem") and durable_record.stored_set(
            svc.storage, snapshot, record["set_number"])
        if found:
            for name in ("prompt_tokens", "completion_tokens"):
                usage[name] = usage.get(name, 0) + int(found["token_usage"].get(name, 0))
            usage["model_calls"] = usage.get("model_calls", 0) + int(found["token_usage"].get("model_calls", 1))
            record.update(status=UnitStatus.SUCCESS, file_path=found["file_path"],
                          segments_count=found["segments_count"])
        elif record.get("status") != UnitStatus.FAILED:
            record.update(status=UnitStatus.FAILED, error_message="lost before it finished")
