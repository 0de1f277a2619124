"""OUTPUT_ROOT/.jobs/<job_id>.json: from a job id to its metadata file, which outlives Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .files import write_json_atomic

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
