"""The summary of a job: its final state, the `result` object the job URL serves, the metadata file."""

from __future__ import annotations

import logging
from typing import Any

from .errors import StorageError
from .files import write_json_atomic
from .generation import output_dir
from .job_store import (
    CANCELLED,
    COMPLETED,
    FAILED,
    FINAL_STATES,
    PARTIAL,
    SET_CANCELLED,
    SET_FAILED,
    SET_PENDING,
    SET_RETRYING,
    SET_RUNNING,
    SET_SUCCESS,
    now_iso,
)
from .metadata import metadata_snapshot, token_usage
from .retries import retry_results
from .services import Services

log = logging.getLogger(__name__)
RETRY_ENDPOINT = "/retry-failed-story-sets"


def final_state(job: dict[str, Any]) -> str:
    """cancelled if asked; completed when every set succeeded, failed when none did, else partial."""
    if job.get("cancelled_at"):
        return CANCELLED
    succeeded = sum(1 for s in job["sets"] if s["status"] == SET_SUCCESS)
    if succeeded == len(job["sets"]) and job.get("bible"):
        return COMPLETED
    return PARTIAL if succeeded else FAILED


def _set_entry(record: dict[str, Any]) -> dict[str, Any]:
    entry = {"set_number": record["set_number"], "status": record["status"],
             "segments_requested": record["last_segment"] - record["first_segment"] + 1,
             "first_segment": record["first_segment"], "last_segment": record["last_segment"],
             "attempts": len(record.get("attempts", [])),
             "attempt_history": record.get("attempts", [])}
    if record["status"] == SET_SUCCESS:
        entry["segments_count"] = record.get("segments_count", 0)
        if record.get("file_path"):
            entry["file_path"] = record["file_path"]
    elif record["status"] == SET_FAILED:
        entry["error"] = record.get("error_message") or record.get("last_error", "failed")
    return entry


def build_result(job: dict[str, Any]) -> dict[str, Any]:
    """The `result` object: the summary so far, or the final one once the job has ended."""
    sets = job["sets"]
    ok = [s for s in sets if s["status"] == SET_SUCCESS]
    failed = [s["set_number"] for s in sets if s["status"] == SET_FAILED]
    cancelled = [s["set_number"] for s in sets if s["status"] == SET_CANCELLED]
    request = job["request"]
    result: dict[str, Any] = {
        "success": job.get("state") == COMPLETED,
        "job_id": job["job_id"],
        "story_title": job.get("title"),
        "provider": job.get("provider"),
        "generation_summary": {
            "total_segments_requested": request["total_segments"],
            "total_segments_generated": sum(s.get("segments_count", 0) for s in ok),
            "total_sets_requested": len(sets),
            "successful_sets": len(ok),
            "failed_sets": len(failed),
            "failed_set_numbers": failed,
        },
        "retry_info": {"can_retry": bool(failed or cancelled) and job.get("state") in FINAL_STATES,
                       "failed_sets": failed, "retry_endpoint": RETRY_ENDPOINT},
        "sets": [_set_entry(s) for s in sets],
        "token_usage": token_usage(job),
        "retry_statistics": {
            "attempts_per_set": {str(s["set_number"]): len(s.get("attempts", [])) for s in sets},
            "total_retries": sum(max(0, len(s.get("attempts", [])) - 1) for s in sets),
        },
    }
    if job.get("bible"):
        result["logline"] = job["bible"]["logline"]
    bible_record = job.get("bible_record") or {}
    result["story_bible"] = {"status": bible_record.get("status", "pending"),
                             "attempts": len(bible_record.get("attempts", [])),
                             "attempt_history": bible_record.get("attempts", [])}
    if job.get("file_stem"):
        directory = request["output_directory"]
        result["metadata_file"] = f"{directory}/{job['file_stem']}_metadata.json"
    if cancelled:
        result["generation_summary"]["cancelled_set_numbers"] = cancelled
    if job.get("error"):
        result["error"] = job["error"]
    if job.get("retry"):
        result["retry_info"].update(job["retry"], retry_results=retry_results(job))
    return result


def write_metadata(svc: Services, job: dict[str, Any]) -> None:
    """Rewrite the job's metadata file from the job store (atomic replace)."""
    if not job.get("file_stem") or not job["request"].get("save_to_files"):
        return
    try:
        path = output_dir(svc, job) / f"{job['file_stem']}_metadata.json"
        write_json_atomic(path, metadata_snapshot(job))
    except (OSError, StorageError) as exc:
        log.error("cannot write the metadata file: %s", exc, extra={"job_id": job["job_id"]})


def finish_job(svc: Services, job_id: str, error: str | None = None,
               run: int | None = None) -> dict[str, Any] | None:
    """Decide the job's final state, store it and write the metadata file; returns the result.

    With `error` (the pipeline broke: a worker died, a time limit hit), sets that never reached
    an outcome are marked failed with that error, so that the job ends and can be retried.
    """
    job = svc.store.get(job_id)
    if job is None:
        log.error("job record is gone; nothing to assemble", extra={"job_id": job_id})
        return None
    run = int(job.get("run") or 1) if run is None else run
    if run != int(job.get("run") or 1):
        log.info("callback of run %s ignored: run %s is current", run, job.get("run"),
                 extra={"job_id": job_id})
        return None
    if job.get("cancelled_at"):
        error = None  # revoked tasks break the chord: that is the cancellation, not an error
    if error:
        unfinished = (SET_PENDING, SET_RUNNING, SET_RETRYING)
        for record in job["sets"]:
            svc.store.update_record_if(
                job_id, f"set:{record['set_number']}", unfinished, status=SET_FAILED,
                error_message=f"Set {record['set_number']} did not finish: {error}")
        svc.store.update_record_if(job_id, "bible_record", unfinished, status=SET_FAILED,
                                   error_message=f"The story bible did not finish: {error}")
        job = svc.store.get(job_id) or job
    state = final_state(job)
    fields: dict[str, Any] = {"finished_at": now_iso()}
    if error:
        fields["error"] = error
    job.update(state=state, **fields)
    write_metadata(svc, job)  # before the state is announced: a client that sees it finds the file
    if not svc.store.finalize(job_id, run, state, **fields):
        log.info("run %s was replaced before it could end the job", run, extra={"job_id": job_id})
        return None
    log.info("job %s: %s", state, job.get("title"), extra={"job_id": job_id})
    return build_result(job)
