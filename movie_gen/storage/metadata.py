"""The metadata file: the durable record of a job (request, bible, sets, attempts, token usage)."""

from __future__ import annotations

from typing import Any

from movie_gen.store.job_model import now_iso

SNAPSHOT_FIELDS = ("job_id", "state", "created_at", "provider", "owner", "title", "file_stem",
                   "sets_total", "request", "bible", "bible_record", "retry", "error", "cancelled_at",
                   "finished_at", "max_retries", "run")


def token_usage(job: dict[str, Any]) -> dict[str, int]:
    prompt, completion = job.get("tokens_prompt", 0), job.get("tokens_completion", 0)
    return {"model_calls": job.get("llm_calls", 0), "prompt_tokens": prompt,
            "completion_tokens": completion, "total_tokens": prompt + completion}


def metadata_snapshot(job: dict[str, Any]) -> dict[str, Any]:
    """Everything needed to report on or retry the job without its Redis record."""
    snapshot = {k: job[k] for k in SNAPSHOT_FIELDS if job.get(k) is not None}
    snapshot["sets"] = job.get("sets", [])
    snapshot["token_usage"] = token_usage(job)
    snapshot["written_at"] = now_iso()
    return snapshot
