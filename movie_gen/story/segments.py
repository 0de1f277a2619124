"""Segments of one set: their JSON schema for the model, and the checks a set must pass to count."""

from __future__ import annotations

from functools import partial
from typing import Any, Iterator

from jsonschema import ValidationError

from movie_gen.story.story_bible import SetPlan
from movie_gen.story.text_rules import known_name, normalized, text_schema
from movie_gen.story.validation import at, checked, repeats

TIMES_OF_DAY = ["dawn", "morning", "day", "afternoon", "dusk", "evening", "night"]
MAX_DIALOGUE = 12


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


MAX_LINE_REPEATS_IN_SET = 2  # a line of three words or more may recur once in a set ("Run!" more often)


def validate_segments(data: Any, plan: SetPlan, character_ids: list[str],
                      places: list[str] | None = None) -> list[dict[str, Any]]:
    """One set's output checked against the schema it was sent (`set_json_schema`), then for
    contiguous numbering and repeated dialogue; a location may name one of `places` in other words."""
    def other_words(error: ValidationError) -> bool:
        return (error.validator == "enum" and error.path[-1] == "location"
                and isinstance(error.instance, str) and known_name(error.instance, places or []))

    checks = [partial(check, plan) for check in (_numbering, _repeated_lines)]
    return checked(set_json_schema(plan, character_ids, places), data, f"set {plan.set_number}",
                   {"segments": plan.first}, checks, other_words)["segments"]


def _numbering(plan: SetPlan, data: dict[str, Any]) -> Iterator[str]:
    """The segments numbered plan.first, plan.first + 1, ... in order: the first one out of step."""
    for i, seg in enumerate(data["segments"]):
        if seg["segment_number"] != plan.first + i:
            yield at(("segments", i, "segment_number"), f"segment {plan.first + i} is numbered "
                     f"{seg['segment_number']!r}: number the segments {plan.first} to {plan.last} in order")
            return


def _repeated_lines(plan: SetPlan, data: dict[str, Any]) -> Iterator[str]:
    """No dialogue line twice in a segment, no line of three words or more in over two segments of a set."""
    in_set: dict[str, list[int]] = {}
    for s, seg in enumerate(data["segments"]):
        lines = [normalized(entry["line"]) for entry in seg["dialogue"]]
        for first, second, *_ in repeats(lines):
            yield at(("segments", s, "dialogue", second - 1), f"segment {plan.first + s}: dialogue {second} "
                     f"repeats dialogue {first} word for word ({seg['dialogue'][second - 1]['line']!r}): "
                     "write each line once")
        for line in dict.fromkeys(lines):
            if len(line.split()) >= 3:
                in_set.setdefault(line, []).append(seg["segment_number"])
    for line, numbers in in_set.items():
        if len(numbers) > MAX_LINE_REPEATS_IN_SET:
            yield at(("segments",), f"the dialogue line {line!r} is said {len(numbers)} times in this set "
                                    f"(segments {', '.join(map(str, numbers))}): write new lines")
