"""Jobs as the API sees them: submit, look up (with the durable fallback), and the job view."""

from __future__ import annotations

import logging
import re
from typing import Any

from celery import Celery

from movie_gen.config.settings import Settings
from movie_gen.execution.canvas import enqueue_job, new_task_id
from movie_gen.jobs.assembly import build_result, set_entry, set_statuses
from movie_gen.jobs.retries import stalled_seconds
from movie_gen.services import Services
from movie_gen.storage import durable_record
from movie_gen.store.job_store import FINAL_STATES, SET_CANCELLED, SET_FAILED, SET_SUCCESS, new_job_id
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
    bible["status"] = SET_SUCCESS if snapshot.get("bible") else SET_FAILED
    snapshot["bible_record"] = bible
    for record in snapshot.get("sets", []):
        if record.get("status") == SET_SUCCESS:
            continue
        found = snapshot.get("file_stem") and durable_record.stored_set(
            svc.storage, snapshot, record["set_number"])
        if found:
            for name in ("prompt_tokens", "completion_tokens"):
                usage[name] = usage.get(name, 0) + int(found["token_usage"].get(name, 0))
            usage["model_calls"] = usage.get("model_calls", 0) + int(found["token_usage"].get("model_calls", 1))
            record.update(status=SET_SUCCESS, file_path=found["file_path"],
                          segments_count=found["segments_count"])
        elif record.get("status") != SET_FAILED:
            record.update(status=SET_FAILED, error_message="lost before it finished")


def job_view(job: dict[str, Any], settings: Settings | None = None,
             history: bool = False) -> dict[str, Any]:
    """The body of GET /jobs/<id>; `stalled` says when a running job has lost its tasks.

    Its size does not grow with the story: one page of sets (`result.sets_next` links the
    rest), and their attempt history only with `history`.
    """
    statuses = set_statuses(job)
    ok = sum(1 for s in statuses.values() if s == SET_SUCCESS)
    failed = sum(1 for s in statuses.values() if s == SET_FAILED)
    cancelled = sum(1 for s in statuses.values() if s == SET_CANCELLED)
    result = build_result(job, history)
    last = job["sets"][-1]["set_number"] if job["sets"] else 0
    result["sets_next"] = (f"/jobs/{job['job_id']}/sets?cursor={last + 1}"
                           if last < len(statuses) else None)
    return {"job_id": job["job_id"], "state": job["state"],
            "progress": {"sets_total": len(statuses), "sets_succeeded": ok, "sets_failed": failed,
                         "sets_pending": len(statuses) - ok - failed - cancelled,
                         "sets_cancelled": cancelled},
            "created_at": job.get("created_at"), "updated_at": job.get("updated_at"),
            **_stalled(job, settings), "result": result}


def sets_page(job: dict[str, Any], limit: int) -> dict[str, Any]:
    """GET /jobs/<id>/sets: one page of sets with every attempt, and the cursor of the next."""
    last = job["sets"][-1]["set_number"] if job["sets"] else 0
    more = last < job["sets_total"] and len(job["sets"]) == limit
    return {"job_id": job["job_id"], "sets": [set_entry(s) for s in job["sets"]],
            "next_cursor": str(last + 1) if more else None}


def _stalled(job: dict[str, Any], settings: Settings | None) -> dict[str, Any]:
    idle = stalled_seconds(job, settings) if settings else None
    if idle is None:
        return {}
    return {"stalled": {"idle_s": round(idle), "message": "no progress for longer than any "
                        "redelivery takes: its tasks were lost; POST /retry-failed-story-sets runs "
                        "what is left"}}
