"""`.jobs/<job_id>.json` in the output store: from a job id to its metadata file, which outlives Redis."""

from __future__ import annotations

from typing import Any

from movie_gen.storage.files import UnsafePath, join, set_file_name
from movie_gen.storage.object_store import OutputStore

JOBS_DIR = ".jobs"


def pointer_key(job_id: str) -> str:
    return f"{JOBS_DIR}/{job_id}.json"


def remember(store: OutputStore, job_id: str, metadata_file: str) -> None:
    """Record where the job's metadata file is (its key in the store)."""
    store.write_json(pointer_key(job_id), {"job_id": job_id, "metadata_file": metadata_file})


def load_snapshot(store: OutputStore, job_id: str) -> dict[str, Any] | None:
    """The job's last stored metadata snapshot, or None when there is none (or it is not ours)."""
    pointer = store.read_json(pointer_key(job_id))
    if not isinstance(pointer, dict) or not isinstance(pointer.get("metadata_file"), str):
        return None
    snapshot = store.read_json(pointer["metadata_file"])
    return snapshot if isinstance(snapshot, dict) and snapshot.get("job_id") == job_id else None


def stored_set(store: OutputStore, snapshot: dict[str, Any], set_number: int) -> dict[str, Any] | None:
    """A set file of this job that its metadata file does not know yet (written after it)."""
    try:
        directory = store.directory(snapshot["request"]["output_directory"])
        key = join(directory, set_file_name(snapshot["file_stem"], set_number))
    except (KeyError, TypeError, UnsafePath):
        return None
    document = store.read_json(key)
    if not isinstance(document, dict) or document.get("job_id") != snapshot["job_id"]:
        return None
    info, segments = document.get("set_info"), document.get("segments")
    usage = info.get("token_usage") if isinstance(info, dict) else None
    return {"file_path": key, "segments_count": len(segments) if isinstance(segments, list) else 0,
            "token_usage": usage if isinstance(usage, dict) else {}}
