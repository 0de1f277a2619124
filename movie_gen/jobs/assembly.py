"""The summary of a job: its final state, the `result` object the job URL serves, the metadata file."""

from __future__ import annotations

import logging
from typing import Any

from movie_gen.errors import StorageError, StorageUnavailable
from movie_gen.execution.generation import output_dir
from movie_gen.jobs.retries import retry_results
from movie_gen.services import Services
from movie_gen.storage.files import join
from movie_gen.storage.metadata import metadata_snapshot, token_usage
from movie_gen.store.job_store import (
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
from movie_gen.story.story_bible import set_sizes

log = logging.getLogger(__name__)
RETRY_ENDPOINT = "/retry-failed-story-sets"


def final_state(job: dict[str, Any]) -> str:
    """cancelled if asked; completed when every set succeeded, failed when none did, else partial."""
    if job.get("cancelled_at"):
        return CANCELLED
    statuses = set_statuses(job)
    succeeded = sum(1 for status in statuses.values() if status == SET_SUCCESS)
    if succeeded == len(statuses) and job.get("bible"):
        return COMPLETED
    return PARTIAL if succeeded else FAILED


def set_statuses(job: dict[str, Any]) -> dict[int, str]:
    """Every set's status, from a whole job or from a page read (`JobStore.get_page`)."""
    if "set_statuses" in job:
        return job["set_statuses"]
    return {s["set_number"]: s["status"] for s in job["sets"]}


def _attempt_counts(job: dict[str, Any]) -> dict[int, int]:
    if "set_attempts" in job:
        return job["set_attempts"]
    return {s["set_number"]: len(s.get("attempts", [])) for s in job["sets"]}


def set_entry(record: dict[str, Any], history: bool = True) -> dict[str, Any]:
    """One set as the API shows it; `history` adds every attempt."""
    entry = {"set_number": record["set_number"], "status": record["status"],
             "segments_requested": record["last_segment"] - record["first_segment"] + 1,
             "first_segment": record["first_segment"], "last_segment": record["last_segment"],
             "attempts": len(record.get("attempts", []))}
    if history:
        entry["attempt_history"] = record.get("attempts", [])
    if record["status"] == SET_SUCCESS:
        entry["segments_count"] = record.get("segments_count", 0)
        if record.get("token_usage") is not None:
            entry["token_usage"] = record["token_usage"]
        if record.get("file_path"):
            entry["file_path"] = record["file_path"]
    elif record["status"] == SET_FAILED:
        entry["error"] = record.get("error_message") or record.get("last_error", "failed")
    return entry


def build_result(job: dict[str, Any], history: bool = True) -> dict[str, Any]:
    """The `result` object: the summary so far, or the final one once the job has ended.

    Its `sets` are the set records that `job` holds (all of them, or one page of them).
    """
    statuses, counts = set_statuses(job), _attempt_counts(job)
    request = job["request"]
    plans = set_sizes(request["total_segments"], request["segments_per_set"])
    ok = [n for n, status in statuses.items() if status == SET_SUCCESS]
    failed = sorted(n for n, status in statuses.items() if status == SET_FAILED)
    cancelled = sorted(n for n, status in statuses.items() if status == SET_CANCELLED)
    result: dict[str, Any] = {
        "success": job.get("state") == COMPLETED,
        "job_id": job["job_id"],
        "story_title": job.get("title"),
        "provider": job.get("provider"),
        "output_mode": job.get("output_mode"),
        "generation_summary": {
            "total_segments_requested": request["total_segments"],
            "total_segments_generated": sum(plans.get(n, 0) for n in ok),
            "total_sets_requested": len(statuses),
            "successful_sets": len(ok),
            "failed_sets": len(failed),
            "failed_set_numbers": failed,
        },
        "retry_info": {"can_retry": bool(failed or cancelled) and job.get("state") in FINAL_STATES,
                       "failed_sets": failed, "retry_endpoint": RETRY_ENDPOINT},
        "sets": [set_entry(s, history) for s in job["sets"]],
        "token_usage": token_usage(job),
        "retry_statistics": {
            "attempts_per_set": {str(n): counts.get(n, 0) for n in sorted(statuses)},
            "total_retries": sum(max(0, c - 1) for c in counts.values()),
        },
    }
    if job.get("bible"):
        result["logline"] = job["bible"]["logline"]
    bible_record = job.get("bible_record") or {}
    result["story_bible"] = {"status": bible_record.get("status", "pending"),
                             "attempts": len(bible_record.get("attempts", []))}
    if history:
        result["story_bible"]["attempt_history"] = bible_record.get("attempts", [])
    if job.get("file_stem"):
        directory = request["output_directory"]
        result["metadata_file"] = f"{directory}/{job['file_stem']}_metadata.json"
    if cancelled:
        result["generation_summary"]["cancelled_set_numbers"] = cancelled
    if job.get("error"):
        result["error"] = job["error"]
    if job.get("warnings"):
        result["warnings"] = job["warnings"]
    if job.get("quota_not_before"):
        result["retry_info"]["not_before"] = job["quota_not_before"]
        result["error"] = job.get("quota_error")
    if job.get("retry_scheduled_at"):
        result["retry_info"]["scheduled_at"] = job["retry_scheduled_at"]
    if job.get("retry"):
        result["retry_info"].update(job["retry"], retry_results=retry_results(job, statuses, plans))
    return result


def write_metadata(svc: Services, job: dict[str, Any]) -> None:
    """Rewrite the job's metadata file from the job store (a whole-file replace)."""
    if not job.get("file_stem") or not job["request"].get("save_to_files"):
        return
    try:
        svc.storage.write_json(join(output_dir(svc, job), f"{job['file_stem']}_metadata.json"),
                               metadata_snapshot(job))
    except (OSError, StorageError, StorageUnavailable) as exc:
        log.error("cannot write the metadata file: %s", exc, extra={"job_id": job["job_id"]})
        warning = (f"the metadata file {job['file_stem']}_metadata.json could not be written ({exc}): "
                   "it does not show this job's last state")
        svc.store.add_warning(job["job_id"], warning)
        job["warnings"] = [*job.get("warnings", []), warning]


def finish_job(svc: Services, job_id: str, error: str | None = None,
               run: int | None = None) -> dict[str, Any] | None:
    """Decide the job's final state, store it and write the metadata file; returns the result.

    Only one caller ends a run (the callback, the errback or a cancel), and only once.

    With `error` (a unit failed, or the pipeline broke: a worker died, a time limit hit), units
    that never reached an outcome are marked failed with that error, so that the job ends and
    can be retried; the job itself carries the error only then, since a set that failed for good
    already says why in its own record.
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
        if svc.store.running_units(job_id):
            return None  # the last running unit ends the cancelled job (finish_if_cancelled)
        error = None  # revoked tasks break the chord: that is the cancellation, not an error
    if not svc.store.claim_finish(job_id, run):
        log.info("run %s has ended already", run, extra={"job_id": job_id})
        return None  # a job seen final never changes; only one caller ends a run
    if error and _fail_unfinished(svc, job, error):
        job = svc.store.get(job_id) or job
    elif error and job.get("bible"):
        error = None
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


def _fail_unfinished(svc: Services, job: dict[str, Any], error: str) -> bool:
    """Mark every unit without an outcome failed with `error`; whether there was any.

    Each unit is changed by compare-and-set on the record just read, so an attempt that wrote
    meanwhile is read again rather than overwritten (a few times at most).
    """
    unfinished = (SET_PENDING, SET_RUNNING, SET_RETRYING)
    marked = False
    units = [(s["set_number"], f"Set {s['set_number']} did not finish: {error}")
             for s in job["sets"] if s["status"] in unfinished]
    if (job.get("bible_record") or {}).get("status", SET_PENDING) in unfinished:
        units.append((None, f"The story bible did not finish: {error}"))
    for number, message in units:
        for _ in range(5):
            record = svc.store.get_record(job["job_id"], number)
            if record is None or record.get("status") not in unfinished:
                break
            if svc.store.update_unit_if(job["job_id"], number, unfinished, SET_FAILED,
                                        record={**record, "error_message": message}, expected=record):
                marked = True
                break
    return marked
