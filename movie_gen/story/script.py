"""The assembled script of a job: the story bible plus every successful segment, in order."""

from __future__ import annotations

from typing import Any

from movie_gen.storage.object_store import OutputStore
from movie_gen.store.job_model import FINAL_STATES, UnitStatus
from movie_gen.store.job_store import JobStore


def _segments_from_file(storage: OutputStore, file_path: str) -> list[dict[str, Any]] | None:
    """A set's segments from its file in the output store (when Redis no longer has them)."""
    document = storage.read_json(file_path)
    segments = document.get("segments") if isinstance(document, dict) else None
    return segments if isinstance(segments, list) else None


def missing_note(job: dict[str, Any], record: dict[str, Any]) -> str:
    """Why a set's segments are missing, and what to do: "Set 2 failed after 4 attempts; retry with …"."""
    number, status = record["set_number"], record["status"]
    retry = f"retry with movie-gen retry {job['job_id']} (or POST /retry-failed-story-sets)"
    if status == UnitStatus.FAILED:
        run = record.get("run", 1)
        count = sum(1 for a in record.get("attempts", []) if a.get("run", 1) == run)
        return f"Set {number} failed after {count} attempt{'s' if count != 1 else ''}; {retry}"
    if status == UnitStatus.CANCELLED:
        return f"Set {number} was cancelled before it was written; {retry}"
    if job.get("state") not in FINAL_STATES:
        return f"Set {number} missing: still being written"
    return f"Set {number} missing: its segments are not available; {retry}"


def assemble_script(store: JobStore, storage: OutputStore, job: dict[str, Any]) -> dict[str, Any]:
    """Bible and segments; `missing_sets` names the sets whose segments are not (yet) available,
    and `missing_notes` says why, by set number."""
    bible = job.get("bible") or {}
    segments: list[dict[str, Any]] = []
    missing, notes = [], {}
    stored = store.all_segments(job["job_id"])
    for record in job["sets"]:
        found = None
        if record["status"] == UnitStatus.SUCCESS:
            found = stored.get(record["set_number"])
            if found is None and record.get("file_path"):
                found = _segments_from_file(storage, record["file_path"])
        if found is None:
            missing.append(record["set_number"])
            notes[str(record["set_number"])] = missing_note(job, record)
        else:
            segments.extend({**segment, "set_number": record["set_number"]} for segment in found)
    return {"job_id": job["job_id"], "state": job["state"], "story_title": bible.get("title"),
            "logline": bible.get("logline"), "tone": bible.get("tone"),
            "characters": bible.get("characters", []), "locations": bible.get("locations", []),
            "set_synopses": bible.get("set_synopses", []), "segments": segments,
            "segments_count": len(segments), "missing_sets": missing, "missing_notes": notes}
