"""The assembled script of a job: the story bible plus every successful segment, in order."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .job_store import SET_SUCCESS
from .services import Services


def _segments_from_file(svc: Services, file_path: str) -> list[dict[str, Any]] | None:
    root = Path(svc.settings.output_root).resolve()
    path = (root / file_path).resolve()
    if root not in path.parents:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))["segments"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def assemble_script(svc: Services, job: dict[str, Any]) -> dict[str, Any]:
    """Bible and segments; `missing_sets` names the sets whose segments are not (yet) available."""
    bible = job.get("bible") or {}
    segments: list[dict[str, Any]] = []
    missing = []
    stored = svc.store.all_segments(job["job_id"])
    for record in job["sets"]:
        found = None
        if record["status"] == SET_SUCCESS:
            found = stored.get(record["set_number"])
            if found is None and record.get("file_path"):
                found = _segments_from_file(svc, record["file_path"])
        if found is None:
            missing.append(record["set_number"])
        else:
            segments.extend({**segment, "set_number": record["set_number"]} for segment in found)
    return {"job_id": job["job_id"], "state": job["state"], "story_title": bible.get("title"),
            "logline": bible.get("logline"), "tone": bible.get("tone"),
            "characters": bible.get("characters", []), "locations": bible.get("locations", []),
            "set_synopses": bible.get("set_synopses", []), "segments": segments,
            "segments_count": len(segments), "missing_sets": missing}
