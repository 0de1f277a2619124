"""The story bible: its JSON schema for the model, its validation, and the plan of sets it implies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import InvalidModelOutput


@dataclass(frozen=True)
class SetPlan:
    """Which segments one set holds: global numbers `first`..`last`."""

    set_number: int
    first: int
    last: int

    @property
    def count(self) -> int:
        return self.last - self.first + 1


def plan_sets(total_segments: int, segments_per_set: int) -> list[SetPlan]:
    """Split a script into sets of `segments_per_set`; the last set holds the remainder."""
    plans = []
    for index, first in enumerate(range(1, total_segments + 1, segments_per_set), start=1):
        plans.append(SetPlan(index, first, min(first + segments_per_set - 1, total_segments)))
    return plans


def set_sizes(total_segments: int, segments_per_set: int) -> dict[int, int]:
    """How many segments each set holds, by set number (the last set holds the remainder)."""
    full, rest = divmod(total_segments, segments_per_set)
    sizes = dict.fromkeys(range(1, full + 1), segments_per_set)
    if rest:
        sizes[full + 1] = rest
    return sizes


# Output tokens of a bible: the cast and locations, plus each set's synopsis (measured on real
# replies: 40-60 tokens a synopsis; this keeps a margin).
BIBLE_BASE_TOKENS = 2000
TOKENS_PER_SYNOPSIS = 70


def max_sets_in_one_bible(max_output_tokens: int) -> int:
    """How many set synopses fit in one model reply of `max_output_tokens`."""
    return max(1, (max_output_tokens - BIBLE_BASE_TOKENS) // TOKENS_PER_SYNOPSIS)


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def bible_json_schema(sets_total: int) -> dict[str, Any]:
    """The structured-output schema of a story bible with one synopsis per set."""
    character = {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "name", "role", "visual_description"],
        "properties": {
            "id": _string("stable lowercase id, e.g. 'mara'; used by every segment"),
            "name": _string("the character's name"),
            "role": _string("protagonist, antagonist, mentor, ..."),
            "visual_description": _string(
                "face, build, hair, costume: enough to draw the same person in every shot"),
        },
    }
    location = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "description"],
        "properties": {"name": _string("short name"), "description": _string("look and feel")},
    }
    synopsis = {
        "type": "object",
        "additionalProperties": False,
        "required": ["summary", "ends_with"],
        "properties": {
            "summary": _string("what happens in this set"),
            "ends_with": _string("the exact situation at the end of this set"),
        },
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "logline", "tone", "characters", "locations", "set_synopses"],
        "properties": {
            "title": _string("the film's title"),
            "logline": _string("one sentence"),
            "tone": _string("genre and mood"),
            "characters": {"type": "array", "minItems": 1, "maxItems": 12, "items": character},
            "locations": {"type": "array", "minItems": 1, "maxItems": 20, "items": location},
            "set_synopses": {"type": "array", "minItems": sets_total, "maxItems": sets_total,
                             "items": synopsis},
        },
    }


_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _require_text(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidModelOutput(f"{where}: '{key}' must be a non-empty string")
    return value.strip()


def validate_bible(data: Any, sets_total: int) -> dict[str, Any]:
    """Check a bible from the model and return it normalised; raise InvalidModelOutput if unusable."""
    if not isinstance(data, dict):
        raise InvalidModelOutput("story bible: expected a JSON object")
    bible = {key: _require_text(data, key, "story bible") for key in ("title", "logline", "tone")}
    characters = data.get("characters")
    if not isinstance(characters, list) or not characters:
        raise InvalidModelOutput("story bible: 'characters' must be a non-empty list")
    roster, seen = [], set()
    for i, char in enumerate(characters, start=1):
        if not isinstance(char, dict):
            raise InvalidModelOutput(f"story bible: character {i} is not an object")
        entry = {k: _require_text(char, k, f"character {i}")
                 for k in ("id", "name", "role", "visual_description")}
        entry["id"] = entry["id"].lower()
        if not _ID.match(entry["id"]) or entry["id"] in seen:
            raise InvalidModelOutput(f"story bible: character id {entry['id']!r} is invalid or repeated")
        seen.add(entry["id"])
        roster.append(entry)
    locations = data.get("locations")
    if not isinstance(locations, list) or not locations:
        raise InvalidModelOutput("story bible: 'locations' must be a non-empty list")
    places = [{k: _require_text(loc, k, f"location {i}") for k in ("name", "description")}
              for i, loc in enumerate(locations, start=1) if isinstance(loc, dict)]
    if len(places) != len(locations):
        raise InvalidModelOutput("story bible: every location must be an object")
    synopses = data.get("set_synopses")
    if not isinstance(synopses, list) or len(synopses) != sets_total:
        got = len(synopses) if isinstance(synopses, list) else "none"
        raise InvalidModelOutput(f"story bible: expected {sets_total} set synopses, got {got}")
    bible["characters"] = roster
    bible["locations"] = places
    bible["set_synopses"] = [
        {"set_number": n, **{k: _require_text(s, k, f"synopsis {n}") for k in ("summary", "ends_with")}}
        if isinstance(s, dict) else _raise(f"story bible: synopsis {n} is not an object")
        for n, s in enumerate(synopses, start=1)
    ]
    return bible


def synopsis_of(bible: dict[str, Any], set_number: int) -> dict[str, Any] | None:
    """The synopsis of one set, from a bible that may carry only the synopses a set needs."""
    return next((s for s in bible["set_synopses"] if s.get("set_number") == set_number), None)


def sets_in(bible: dict[str, Any]) -> int:
    """How many sets the story has (a set's bible carries `sets_total` beside its few synopses)."""
    return bible.get("sets_total") or len(bible["set_synopses"])


def _raise(message: str) -> Any:
    raise InvalidModelOutput(message)
