"""OUTPUT_ROOT/.jobs/<job_id>.json: from a job id to its metadata file, which outlives Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from movie_gen.storage.files import UnsafePath, resolve_under, set_file_name, write_json_atomic

JOBS_DIR = ".jobs"


def pointer_path(output_root: Path, job_id: str) -> Path:
    return Path(output_root) / JOBS_DIR / f"{job_id}.json"


def remember(output_root: Path, job_id: str, metadata_file: str) -> None:
    """Record where the job's metadata file is (a path relative to OUTPUT_ROOT)."""
    write_json_atomic(pointer_path(output_root, job_id),
                      {"job_id": job_id, "metadata_file": metadata_file})


def load_snapshot(output_root: Path, job_id: str) -> dict[str, Any] | None:
    """The job's last metadata snapshot on disk, or None when there is none (or it is not ours)."""
    root = Path(output_root).resolve()
    try:
        pointer = json.loads(pointer_path(root, job_id).read_text(encoding="utf-8"))
        path = (root / pointer["metadata_file"]).resolve()
        if root not in path.parents:
            return None
        snapshot = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return snapshot if isinstance(snapshot, dict) and snapshot.get("job_id") == job_id else None


def set_on_disk(output_root: Path, snapshot: dict[str, Any], set_number: int) -> dict[str, Any] | None:
    """A set file of this job that its metadata file does not know yet (written after it)."""
    try:
        directory = resolve_under(output_root, snapshot["request"]["output_directory"])
        path = directory / set_file_name(snapshot["file_stem"], set_number)
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError, TypeError, UnsafePath):
        return None
    if not isinstance(document, dict) or document.get("job_id") != snapshot["job_id"]:
        return None
    info = document.get("set_info") or {}
    return {"file_path": path.relative_to(Path(output_root).resolve()).as_posix(),
            "segments_count": len(document.get("segments") or []),
            "token_usage": info.get("token_usage") or {}}
