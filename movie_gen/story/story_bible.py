"""The story bible: its JSON schema for the model, the checks it must pass, and the plan of sets."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterator

from movie_gen.story.text_rules import DESCRIPTIONS, name_key, text_schema
from movie_gen.story.validation import at, checked, repeats


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


def _roster_ids(bible: dict[str, Any]) -> Iterator[str]:
    """Each character id, lowercased, a short slug ('mara') used once: segments name characters by it."""
    ids = [char["id"].lower() for char in bible["characters"]]
    for i, key in enumerate(ids, start=1):
        if not _ID.match(key):
            yield at(("characters", i - 1, "id"), f"story bible: character {i} id {key!r} must be lowercase "
                     "letters, digits, '_' or '-', starting with a letter or digit (e.g. 'mara')")
    for first, second, *_ in repeats(ids):
        yield at(("characters", second - 1, "id"), f"story bible: character id {ids[first - 1]!r} is used "
                 f"twice (characters {first} and {second}): ids must be unique")


def _distinct_names(bible: dict[str, Any]) -> Iterator[str]:
    """Every character's and every location's name once (case, articles and punctuation aside)."""
    for key, what in (("characters", "character"), ("locations", "location")):
        names = [item["name"] for item in bible[key]]
        for used in repeats(map(name_key, names)):
            listed = ", ".join(map(str, used[:-1])) + f" and {used[-1]}"
            yield at((key, used[0] - 1, "name"), f"story bible: {what} name {names[used[0] - 1]!r} is used "
                     f"{len(used)} times ({what}s {listed}): give each {what} its own name, once")


def validate_synopses(data: Any, first: int, count: int) -> list[dict[str, Any]]:
    """The `count` synopses of a reply for sets `first`.., checked against the schema it was sent."""
    return checked(synopses_json_schema(count), data, f"synopses of sets {first} to {first + count - 1}",
                   {"set_synopses": first})["set_synopses"]


def validate_bible(data: Any, sets_total: int) -> dict[str, Any]:
    """A bible checked against the schema it was sent, then for unique ids and names; normalised
    (lowercase ids, numbered synopses). InvalidModelOutput if it is unusable."""
    bible = checked(bible_json_schema(sets_total), data, "story bible",
                    checks=(_roster_ids, _distinct_names))
    for char in bible["characters"]:
        char["id"] = char["id"].lower()
    bible["set_synopses"] = [{"set_number": n, **s} for n, s in enumerate(bible["set_synopses"], start=1)]
    return bible


def synopsis_of(bible: dict[str, Any], set_number: int) -> dict[str, Any] | None:
    """The synopsis of one set, from a bible that may carry only the synopses a set needs."""
    return next((s for s in bible["set_synopses"] if s.get("set_number") == set_number), None)


def sets_in(bible: dict[str, Any]) -> int:
    """How many sets the story has (a set's bible carries `sets_total` beside its few synopses)."""
    return bible.get("sets_total") or len(bible["set_synopses"])

