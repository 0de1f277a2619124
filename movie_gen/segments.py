"""Segments of one set: their JSON schema for the model and the validation a set must pass to count."""

from __future__ import annotations

from typing import Any

from .errors import InvalidModelOutput
from .story_bible import SetPlan

TIMES_OF_DAY = ["dawn", "morning", "day", "afternoon", "dusk", "evening", "night"]
TEXT_FIELDS = ("location", "action", "visual_prompt", "camera", "narration", "mood")


def set_json_schema(plan: SetPlan, character_ids: list[str]) -> dict[str, Any]:
    """The structured-output schema of one set: exactly `plan.count` segments, ids from the roster."""
    segment = {
        "type": "object",
        "additionalProperties": False,
        "required": ["segment_number", "location", "time_of_day", "characters", "action",
                     "visual_prompt", "camera", "dialogue", "narration", "mood",
                     "duration_seconds"],
        "properties": {
            "segment_number": {"type": "integer", "minimum": plan.first, "maximum": plan.last},
            "location": {"type": "string"},
            "time_of_day": {"type": "string", "enum": TIMES_OF_DAY},
            "characters": {"type": "array", "items": {"type": "string", "enum": character_ids}},
            "action": {"type": "string"},
            "visual_prompt": {"type": "string"},
            "camera": {"type": "string"},
            "dialogue": {"type": "array", "items": {
                "type": "object", "additionalProperties": False,
                "required": ["character", "line"],
                "properties": {"character": {"type": "string", "enum": character_ids},
                               "line": {"type": "string"}}}},
            "narration": {"type": "string"},
            "mood": {"type": "string"},
            "duration_seconds": {"type": "integer", "minimum": 1, "maximum": 120},
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["segments"],
        "properties": {"segments": {"type": "array", "minItems": plan.count,
                                    "maxItems": plan.count, "items": segment}},
    }


def _check_segment(seg: Any, expected_number: int, roster: set[str]) -> dict[str, Any]:
    where = f"segment {expected_number}"
    if not isinstance(seg, dict):
        raise InvalidModelOutput(f"{where}: expected an object")
    if seg.get("segment_number") != expected_number:
        raise InvalidModelOutput(
            f"{where}: numbering is not contiguous (got segment_number {seg.get('segment_number')!r})")
    out: dict[str, Any] = {"segment_number": expected_number}
    for key in TEXT_FIELDS:
        value = seg.get(key)
        if not isinstance(value, str) or not value.strip():
            raise InvalidModelOutput(f"{where}: '{key}' must be a non-empty string")
        out[key] = value.strip()
    out["time_of_day"] = seg.get("time_of_day")
    if out["time_of_day"] not in TIMES_OF_DAY:
        raise InvalidModelOutput(f"{where}: time_of_day {out['time_of_day']!r} is not one of {TIMES_OF_DAY}")
    characters = seg.get("characters")
    if not isinstance(characters, list) or not all(isinstance(c, str) for c in characters):
        raise InvalidModelOutput(f"{where}: 'characters' must be a list of roster ids")
    unknown = sorted(set(characters) - roster)
    if unknown:
        raise InvalidModelOutput(f"{where}: unknown character id(s) {unknown}")
    out["characters"] = characters
    dialogue = seg.get("dialogue")
    if not isinstance(dialogue, list):
        raise InvalidModelOutput(f"{where}: 'dialogue' must be a list")
    lines = []
    for entry in dialogue:
        if (not isinstance(entry, dict) or not isinstance(entry.get("line"), str)
                or not entry["line"].strip()):
            raise InvalidModelOutput(f"{where}: every dialogue entry needs a character and a line")
        if entry.get("character") not in roster:
            raise InvalidModelOutput(f"{where}: dialogue by unknown character {entry.get('character')!r}")
        lines.append({"character": entry["character"], "line": entry["line"].strip()})
    out["dialogue"] = lines
    duration = seg.get("duration_seconds")
    if isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= 120:
        raise InvalidModelOutput(f"{where}: duration_seconds must be an integer from 1 to 120")
    out["duration_seconds"] = duration
    return out


def validate_segments(data: Any, plan: SetPlan, character_ids: list[str]) -> list[dict[str, Any]]:
    """Check one set's output: schema, exact count, contiguous numbering, roster ids."""
    segments = data.get("segments") if isinstance(data, dict) else None
    if not isinstance(segments, list):
        raise InvalidModelOutput(f"set {plan.set_number}: expected an object with a 'segments' list")
    if len(segments) != plan.count:
        raise InvalidModelOutput(
            f"set {plan.set_number}: expected {plan.count} segments, got {len(segments)}")
    roster = set(character_ids)
    return [_check_segment(seg, plan.first + i, roster) for i, seg in enumerate(segments)]
