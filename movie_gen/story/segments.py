"""Segments of one set: their JSON schema for the model and the validation a set must pass to count."""

from __future__ import annotations

from typing import Any

from movie_gen.errors import InvalidModelOutput
from movie_gen.story.story_bible import SetPlan
from movie_gen.story.text_rules import check_text, known_name, normalized, text_schema

TIMES_OF_DAY = ["dawn", "morning", "day", "afternoon", "dusk", "evening", "night"]
TEXT_FIELDS = ("location", "action", "visual_prompt", "camera", "narration", "mood")


def set_json_schema(plan: SetPlan, character_ids: list[str], places: list[str] | None = None) -> dict[str, Any]:
    """The structured-output schema of one set: exactly `plan.count` segments, ids from the roster,
    locations from the bible's (`places`, when given)."""
    segment = {
        "type": "object",
        "additionalProperties": False,
        "required": ["segment_number", "location", "time_of_day", "characters", "action",
                     "visual_prompt", "camera", "dialogue", "narration", "mood",
                     "duration_seconds"],
        "properties": {
            "segment_number": {"type": "integer", "minimum": plan.first, "maximum": plan.last},
            "location": {**text_schema("location"), "enum": places} if places else text_schema("location"),
            "time_of_day": {"type": "string", "enum": TIMES_OF_DAY},
            "characters": {"type": "array", "uniqueItems": True, "maxItems": len(character_ids),
                           "items": {"type": "string", "enum": character_ids}},
            "action": text_schema("action"),
            "visual_prompt": text_schema("visual_prompt"),
            "camera": text_schema("camera"),
            "dialogue": {"type": "array", "maxItems": MAX_DIALOGUE, "items": {
                "type": "object", "additionalProperties": False,
                "required": ["character", "line"],
                "properties": {"character": {"type": "string", "enum": character_ids},
                               "line": text_schema("line")}}},
            "narration": text_schema("narration"),
            "mood": text_schema("mood"),
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


MAX_DIALOGUE = 12


def _roster_id(value: Any, where: str, roster: list[str]) -> str:
    if value not in roster:
        raise InvalidModelOutput(f"{where}: character id {value!r} is not in the roster: use one of "
                                 f"{', '.join(repr(r) for r in roster)}")
    return value


def _characters(seg: dict[str, Any], where: str, roster: list[str]) -> list[str]:
    characters = seg.get("characters")
    if not isinstance(characters, list):
        raise InvalidModelOutput(f"{where}: 'characters' must be a list of roster ids, got {characters!r}")
    seen: set[str] = set()
    for value in characters:
        _roster_id(value, where, roster)
        if value in seen:
            raise InvalidModelOutput(f"{where}: character id {value!r} is listed twice in 'characters': "
                                     "list each character once")
        seen.add(value)
    return characters


def _dialogue(seg: dict[str, Any], where: str, roster: list[str]) -> list[dict[str, str]]:
    dialogue = seg.get("dialogue")
    if not isinstance(dialogue, list):
        raise InvalidModelOutput(f"{where}: 'dialogue' must be a list, got {dialogue!r}")
    if len(dialogue) > MAX_DIALOGUE:
        raise InvalidModelOutput(f"{where}: 'dialogue' may hold at most {MAX_DIALOGUE} lines, got {len(dialogue)}")
    lines = []
    for i, entry in enumerate(dialogue, start=1):
        if not isinstance(entry, dict):
            raise InvalidModelOutput(f"{where}: dialogue entry {i} is not an object")
        speaker = _roster_id(entry.get("character"), f"{where} dialogue {i}", roster)
        lines.append({"character": speaker, "line": check_text(entry, "line", f"{where} dialogue {i}")})
    return lines


MAX_LINE_REPEATS_IN_SET = 2  # a line of three words or more may recur once in a set ("Run!" more often)


def _location(value: str, where: str, places: list[str] | None) -> str:
    if places and not known_name(value, places):
        raise InvalidModelOutput(f"{where}: location {value!r} is not one of the story bible's "
                                 f"locations: use one of {', '.join(repr(p) for p in places)}")
    return value


def _repeated_lines(segments: list[dict[str, Any]]) -> None:
    """No dialogue line twice in a segment, no longer line more than twice in a set."""
    in_set: dict[str, list[int]] = {}
    for seg in segments:
        where = f"segment {seg['segment_number']}"
        seen: dict[str, int] = {}
        for i, entry in enumerate(seg["dialogue"], start=1):
            line = normalized(entry["line"])
            if line in seen:
                raise InvalidModelOutput(f"{where}: dialogue {i} repeats dialogue {seen[line]} word for word "
                                         f"({entry['line']!r}): write each line once")
            seen[line] = i
            if len(line.split()) >= 3:
                in_set.setdefault(line, []).append(seg["segment_number"])
    for line, numbers in in_set.items():
        if len(numbers) > MAX_LINE_REPEATS_IN_SET:
            raise InvalidModelOutput(f"the dialogue line {line!r} is said {len(numbers)} times in this set "
                                     f"(segments {', '.join(map(str, numbers))}): write new lines")


def _check_segment(seg: Any, expected_number: int, roster: list[str],
                   places: list[str] | None = None) -> dict[str, Any]:
    where = f"segment {expected_number}"
    if not isinstance(seg, dict):
        raise InvalidModelOutput(f"{where}: expected an object")
    if seg.get("segment_number") != expected_number:
        raise InvalidModelOutput(f"{where} is numbered {seg.get('segment_number')!r}: number the "
                                 "segments contiguously")
    out: dict[str, Any] = {"segment_number": expected_number}
    for key in TEXT_FIELDS:
        out[key] = check_text(seg, key, where)
    _location(out["location"], where, places)
    out["time_of_day"] = seg.get("time_of_day")
    if out["time_of_day"] not in TIMES_OF_DAY:
        raise InvalidModelOutput(f"{where}: time_of_day {out['time_of_day']!r} is not one of {TIMES_OF_DAY}")
    out["characters"] = _characters(seg, where, roster)
    out["dialogue"] = _dialogue(seg, where, roster)
    duration = seg.get("duration_seconds")
    if isinstance(duration, bool) or not isinstance(duration, int) or not 1 <= duration <= 120:
        raise InvalidModelOutput(f"{where}: duration_seconds must be an integer from 1 to 120, got {duration!r}")
    out["duration_seconds"] = duration
    return out


def validate_segments(data: Any, plan: SetPlan, character_ids: list[str],
                      places: list[str] | None = None) -> list[dict[str, Any]]:
    """Check one set's output: schema, exact count, contiguous numbering, roster ids, text rules,
    the bible's locations (`places`, when given) and no repeated dialogue."""
    segments = data.get("segments") if isinstance(data, dict) else None
    if not isinstance(segments, list):
        raise InvalidModelOutput(f"set {plan.set_number}: expected an object with a 'segments' list")
    if len(segments) != plan.count:
        raise InvalidModelOutput(f"set {plan.set_number}: expected {plan.count} segments "
                                 f"({plan.first} to {plan.last}), got {len(segments)}")
    checked = [_check_segment(seg, plan.first + i, character_ids, places) for i, seg in enumerate(segments)]
    _repeated_lines(checked)
    return checked
