"""A job and its units as the answers show them: one read of the store, and what is derived from it.

The schemas of `movie_gen.jobs.result_schema` and the API serialize these views; each derived
value is computed once (from the sets' statuses, counts and sizes), and an absent one is `missing`.
"""

from __future__ import annotations

from typing import Any, Callable

from marshmallow import missing

from movie_gen.config.settings import Settings
from movie_gen.jobs.retries import stalled_seconds
from movie_gen.storage.files import join, metadata_file_name
from movie_gen.storage.metadata import token_usage
from movie_gen.store.job_model import FINAL_STATES, JobState, UnitStatus
from movie_gen.story.story_bible import set_sizes

RETRY_ENDPOINT = "/retry-failed-story-sets"
Locate = Callable[[str], tuple[str, str | None]]  # a file's key → its download URL, its object URL
STALLED = ("no progress for longer than any redelivery takes: its tasks were lost; "
           "POST /retry-failed-story-sets runs what is left")


View = dict[str, Any]  # a record's own fields, `record` itself, and what is derived from it


def _view(record: dict[str, Any], shown: dict[str, Any]) -> View:
    """A record as its answer shows it: the values derived from it over its own fields; a value
    that is `missing` is left out of the answer."""
    return {**record, "record": record, **shown}


def set_statuses(job: dict[str, Any]) -> dict[int, str]:
    """Every set's status, from a whole job or from a page read (`JobStore.get_page`)."""
    if "set_statuses" in job:
        return job["set_statuses"]
    return {s["set_number"]: s["status"] for s in job["sets"]}


def progress_of(statuses: list[str]) -> dict[str, int]:
    """Counts of sets by outcome, as the job URL's `progress` gives them."""
    done = {s: statuses.count(s) for s in (UnitStatus.SUCCESS, UnitStatus.FAILED, UnitStatus.CANCELLED)}
    return {"sets_total": len(statuses), "sets_succeeded": done[UnitStatus.SUCCESS],
            "sets_failed": done[UnitStatus.FAILED], "sets_cancelled": done[UnitStatus.CANCELLED],
            "sets_pending": len(statuses) - sum(done.values())}


def unit_view(record: dict[str, Any], history: bool = True, locate: Locate | None = None) -> View:
    """One set (or the story bible): its attempt count, what its outcome shows, where its file is."""
    status, attempts = record.get("status", UnitStatus.PENDING), record.get("attempts", [])
    usage = record.get("token_usage")
    ok = status == UnitStatus.SUCCESS
    _, url = locate(record["file_path"]) if ok and locate and record.get("file_path") else (None, None)
    return _view(record, {"file_url": url or missing,
        "status": status, "attempts": len(attempts), "attempt_history": attempts if history else missing,
        "segments_requested": record["last_segment"] - record["first_segment"] + 1
        if "first_segment" in record else missing,
        "segments_count": record.get("segments_count", 0) if ok else missing,
        "token_usage": usage if ok and usage is not None else missing,
        "file_path": (record.get("file_path") or missing) if ok else missing,
        "error": record.get("error_message") or record.get("last_error", "failed")
        if status == UnitStatus.FAILED else missing})


def job_view(job: dict[str, Any], history: bool = True, links: dict[str, Any] | None = None,
             settings: Settings | None = None, limit: int | None = None,
             locate: Locate | None = None) -> View:
    """The job of one read: with `links` and `settings` for the job URL, `limit` for a page of sets,
    `locate` to name each file by where a client gets it."""
    statuses, request = set_statuses(job), job["request"]
    counts = job.get("set_attempts") or {s["set_number"]: len(s.get("attempts", [])) for s in job["sets"]}
    plans = set_sizes(request["total_segments"], request["segments_per_set"])
    succeeded, failed, cancelled = (sorted(n for n, s in statuses.items() if s == status)
                                    for status in (UnitStatus.SUCCESS, UnitStatus.FAILED, UnitStatus.CANCELLED))
    retried = (job.get("retry") or {}).get("retried_sets", [])
    idle = stalled_seconds(job, settings) if settings else None
    quota, stem = job.get("quota_not_before"), job.get("file_stem")
    last = job["sets"][-1]["set_number"] if job["sets"] else 0
    metadata = join(request["output_directory"], metadata_file_name(stem)) if stem else None
    download, url = locate(metadata) if metadata and locate else (None, None)
    return _view(job, {"metadata_download_url": download or missing, "metadata_file_url": url or missing,
        "links": links or missing, "status_url": links["self"] if links else missing,
        "progress": progress_of(list(statuses.values())),
        "stalled": missing if idle is None else {"idle_s": round(idle), "message": STALLED},
        "success": job.get("state") == JobState.COMPLETED,
        "logline": job["bible"]["logline"] if job.get("bible") else missing,
        "sets": [unit_view(s, history, locate) for s in job["sets"]],
        "story_bible": unit_view(job.get("bible_record") or {}, history),
        "segments_generated": sum(plans.get(n, 0) for n in succeeded),
        "failed_numbers": failed, "cancelled_numbers": cancelled or missing,
        "can_retry": bool(failed or cancelled) and job.get("state") in FINAL_STATES,
        "retry_results": [{"set_number": n, "status": statuses[n],
                           "segments_generated": plans.get(n, 0) if statuses[n] == UnitStatus.SUCCESS else 0}
                          for n in retried if n in statuses] if job.get("retry") else missing,
        "not_before": quota or missing, "scheduled_at": job.get("retry_scheduled_at") or missing,
        "token_usage": token_usage(job),
        "attempts_per_set": {str(n): counts.get(n, 0) for n in sorted(statuses)},
        "total_retries": sum(max(0, c - 1) for c in counts.values()),
        "metadata_file": metadata or missing,
        "error": job.get("quota_error") if quota else job.get("error") or missing,
        "warnings": job.get("warnings") or missing,
        "sets_next": missing if not links else
        f"/jobs/{job['job_id']}/sets?cursor={last + 1}" if last < len(statuses) else None,
        "next_cursor": str(last + 1) if last < job.get("sets_total", 0) and len(job["sets"]) == limit
        else None})
