"""The story bible: its JSON schema for the model, its validation, and the plan of sets it implies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from movie_gen.errors import InvalidModelOutput
from movie_gen.story.text_rules import DESCRIPTIONS, check_text, name_key, text_schema


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


# Output tokens of a reply (measured on real replies: 40-60 tokens a synopsis; this keeps a margin).
BIBLE_BASE_TOKENS = 2000  # title, cast and locations
BATCH_BASE_TOKENS = 300  # the wrapper of a batch of synopses
TOKENS_PER_SYNOPSIS = 70


def synopses_per_reply(reply_tokens: int, with_bible: bool) -> int:
    """How many set synopses fit in one model reply of `reply_tokens` (at least one)."""
    base = BIBLE_BASE_TOKENS if with_bible else BATCH_BASE_TOKENS
    return max(1, (reply_tokens - base) // TOKENS_PER_SYNOPSIS)


def _synopses_schema(count: int) -> dict[str, Any]:
    synopsis = {
        "type": "object",
        "additionalProperties": False,
        "required": ["summary", "ends_with"],
        "properties": {
            "summary": text_schema("summary"),
            "ends_with": text_schema("ends_with"),
        },
    }
    return {"type": "array", "minItems": count, "maxItems": count, "items": synopsis}


def synopses_json_schema(count: int) -> dict[str, Any]:
    """The schema of one batch of `count` set synopses (outlines written in several replies)."""
    return {"type": "object", "additionalProperties": False, "required": ["set_synopses"],
            "properties": {"set_synopses": _synopses_schema(count)}}


def bible_json_schema(synopses: int) -> dict[str, Any]:
    """The structured-output schema of a story bible with its first `synopses` set synopses."""
    character = {
        "type": "object",
        "additionalProperties": False,
        "required": ["id", "name", "role", "visual_description"],
        "properties": {
            "id": text_schema("id"),
            "name": text_schema("name"),
            "role": text_schema("role"),
            "visual_description": text_schema("visual_description"),
        },
    }
    location = {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "description"],
        "properties": {"name": text_schema("name", DESCRIPTIONS["location_name"]),
                       "description": text_schema("description")},
    }
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["title", "logline", "tone", "characters", "locations", "set_synopses"],
        "properties": {
            "title": text_schema("title"),
            "logline": text_schema("logline"),
            "tone": text_schema("tone"),
            "characters": {"type": "array", "minItems": 1, "maxItems": MAX_CHARACTERS,
                           "items": character},
            "locations": {"type": "array", "minItems": 1, "maxItems": MAX_LOCATIONS, "items": location},
            "set_synopses": _synopses_schema(synopses),
        },
    }


MAX_CHARACTERS = 12
MAX_LOCATIONS = 20
_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _objects(data: dict[str, Any], key: str, most: int, where: str) -> list[dict[str, Any]]:
    items = data.get(key)
    if not isinstance(items, list) or not items:
        raise InvalidModelOutput(f"{where}: '{key}' must be a non-empty list, got {type(items).__name__}")
    if len(items) > most:
        raise InvalidModelOutput(f"{where}: '{key}' may hold at most {most} entries, got {len(items)}")
    for i, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise InvalidModelOutput(f"{where}: {key} entry {i} is not an object")
    return items


def _roster(characters: list[dict[str, Any]]) -> list[dict[str, str]]:
    roster: list[dict[str, str]] = []
    first_seen: dict[str, int] = {}
    for i, char in enumerate(characters, start=1):
        entry = {k: check_text(char, k, f"story bible: character {i}")
                 for k in ("id", "name", "role", "visual_description")}
        entry["id"] = entry["id"].lower()
        if not _ID.match(entry["id"]):
            raise InvalidModelOutput(
                f"story bible: character {i} id {entry['id']!r} must be lowercase letters, digits, "
                "'_' or '-', starting with a letter or digit (e.g. 'mara')")
        if entry["id"] in first_seen:
            raise InvalidModelOutput(f"story bible: character id {entry['id']!r} is used twice "
                                     f"(characters {first_seen[entry['id']]} and {i}): ids must be unique")
        first_seen[entry["id"]] = i
        roster.append(entry)
    return roster


def _distinct_names(items: list[dict[str, str]], what: str) -> None:
    """Every name once (case, articles and punctuation aside): the first name used twice is an error."""
    places: dict[str, list[int]] = {}
    for i, item in enumerate(items, start=1):
        places.setdefault(name_key(item["name"]), []).append(i)
    for i, item in enumerate(items, start=1):
        numbers = places[name_key(item["name"])]
        if len(numbers) > 1:
            listed = ", ".join(str(n) for n in numbers[:-1]) + f" and {numbers[-1]}"
            raise InvalidModelOutput(
                f"story bible: {what} name {item['name']!r} is used {len(numbers)} times ({what}s "
                f"{listed}): give each {what} its own name, once")


def validate_synopses(items: Any, first: int, count: int) -> list[dict[str, Any]]:
    """Check `count` synopses numbered from `first`; return them normalised with their set numbers."""
    last = first + count - 1
    if not isinstance(items, list) or len(items) != count:
        got = len(items) if isinstance(items, list) else "none"
        raise InvalidModelOutput(f"story bible: expected {count} set synopses (sets {first} to {last}), "
                                 f"got {got}")
    synopses = []
    for n, item in enumerate(items, start=first):
        if not isinstance(item, dict):
            raise InvalidModelOutput(f"story bible: synopsis of set {n} is not an object")
        synopses.append({"set_number": n, **{k: check_text(item, k, f"story bible: synopsis of set {n}")
                                             for k in ("summary", "ends_with")}})
    return synopses


def validate_bible(data: Any, sets_total: int) -> dict[str, Any]:
    """Check a bible from the model and return it normalised; raise InvalidModelOutput if unusable."""
    if not isinstance(data, dict):
        raise InvalidModelOutput("story bible: expected a JSON object")
    bible = {key: check_text(data, key, "story bible") for key in ("title", "logline", "tone")}
    bible["characters"] = _roster(_objects(data, "characters", MAX_CHARACTERS, "story bible"))
    bible["locations"] = [{k: check_text(loc, k, f"story bible: location {i}") for k in ("name", "description")}
                          for i, loc in enumerate(_objects(data, "locations", MAX_LOCATIONS, "story bible"),
                                                  start=1)]
    _distinct_names(bible["characters"], "character")
    _distinct_names(bible["locations"], "location")
    bible["set_synopses"] = validate_synopses(data.get("set_synopses"), 1, sets_total)
    return bible


def synopsis_of(bible: dict[str, Any], set_number: int) -> dict[str, Any] | None:
    """The synopsis of one set, from a bible that may carry only the synopses a set needs."""
    return next((s for s in bible["set_synopses"] if s.get("set_number") == set_number), None)


def sets_in(bible: dict[str, Any]) -> int:
    """How many sets the story has (a set's bible carries `sets_total` beside its few synopses)."""
    return bible.get("sets_total") or len(bible["set_synopses"])

