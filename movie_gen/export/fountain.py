"""A Fountain screenplay (fountain.io) written from an assembled script: title page, scenes, dialogue."""

from __future__ import annotations

import itertools
import re
from typing import Any, Iterator

from movie_gen.store.job_model import FINAL_STATES

from .roster import character_names, location_descriptions
from .scene_headings import scene_heading

NARRATOR = "NARRATOR"
SET_TRANSITION = "CUT TO:"
# What the Fountain parser would read as something other than action (slug, transition, section...)
_NOT_ACTION = re.compile(r"^([.!@#=>~]|(INT|EXT|EST|I/E|INT\.?/EXT\.?)[ .]|={3,}$)", re.IGNORECASE)


def _text(raw: str) -> str:
    """One line of literal text: no line breaks, no emphasis markup, no notes or boneyard."""
    line = " ".join(str(raw).split())
    return line.replace("*", "\\*").replace("[[", "[ [").replace("/*", "/ *")


def action(raw: str) -> str:
    """An action paragraph, forced with `!` when it would read as another element."""
    line = _text(raw)
    forced = _NOT_ACTION.match(line) or (line.isupper() and line.endswith("TO:"))
    return "!" + line if forced else line


def cue(name: str, extension: str = "") -> str:
    """A character cue: the name in capitals, forced with `@` when it would not read as one."""
    upper = _text(name).upper().rstrip("^ ")
    line = f"{upper} ({extension})" if extension else upper
    return line if upper[:1].isalnum() and upper.isupper() and "(" not in upper else "@" + line


def missing_set_note(set_number: int, script: dict[str, Any]) -> str:
    """The placeholder of a set whose segments are not available: the script's note for it
    ("Set 3 failed after 4 attempts; retry with …"), else whether it is still being written."""
    note = (script.get("missing_notes") or {}).get(str(set_number))
    if note:
        return note
    why = "not available" if script.get("state") in FINAL_STATES else "still being written"
    return f"Set {set_number} missing: {why}"


def _speeches(segment: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(character id, lines) per speech: one character's consecutive lines form one speech."""
    return [(speaker, [entry["line"] for entry in lines])
            for speaker, lines in itertools.groupby(segment["dialogue"], key=lambda e: e["character"])]


def _scenes(segments: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Consecutive segments of one set at the same place and time of day make one scene."""
    key = lambda s: (s.get("set_number"), s["location"], s["time_of_day"])  # noqa: E731
    return [list(group) for _, group in itertools.groupby(segments, key=key)]


def _title_page(script: dict[str, Any]) -> str:
    notes = [f"    {label}: {_text(script[key])}" for label, key in (("Logline", "logline"), ("Tone", "tone"))
             if script.get(key)]
    return "\n".join([f"Title: {_text(script.get('story_title') or 'Untitled')}", "Credit: Written by",
                      "Author: movie-gen", *(["Notes:", *notes] if notes else [])])


def _speech(cue_line: str, lines: list[str]) -> str:
    body = "\n(beat)\n".join(_text(line) for line in lines)
    return f"{cue_line}\n{body}"


def _segment(segment: dict[str, Any], names: dict[str, str]) -> Iterator[str]:
    yield (f"[[Segment {segment['segment_number']}, {segment['duration_seconds']} s. "
           f"Camera: {_text(segment['camera'])}]]")
    yield action(segment["action"])
    yield _speech(cue(NARRATOR, "V.O."), [segment["narration"]])
    for speaker, lines in _speeches(segment):
        off_screen = speaker not in segment["characters"]
        yield _speech(cue(names.get(speaker, speaker), "O.S." if off_screen else ""), lines)


def _set(number: int, segments: list[dict[str, Any]], script: dict[str, Any]) -> Iterator[str]:
    synopsis = next((s for s in script.get("set_synopses", []) if s.get("set_number") == number), None)
    yield f"# Set {number}" + (f"\n= {_text(synopsis['summary'])}" if synopsis else "")
    if not segments:
        note = missing_set_note(number, script)
        yield f"[[{note}]]"
        yield f"> {_text(note).upper()} <"
        return
    names, places = character_names(script), location_descriptions(script)
    for scene in _scenes(segments):
        first = scene[0]
        place = places.get(first["location"].strip().lower(), "")
        yield scene_heading(_text(first["location"]), first["time_of_day"], place)
        for segment in scene:
            yield from _segment(segment, names)


def to_fountain(script: dict[str, Any]) -> str:
    """The whole screenplay as Fountain text; missing sets appear as notes and centered placeholders."""
    by_set = {n: list(group) for n, group in itertools.groupby(script["segments"],
                                                                key=lambda s: s.get("set_number", 1))}
    numbers = sorted(set(by_set) | set(script.get("missing_sets", [])))
    paragraphs = [_title_page(script), "FADE IN:"]
    for index, number in enumerate(numbers):
        if index:
            paragraphs.append(SET_TRANSITION)
        paragraphs.extend(_set(number, by_set.get(number, []), script))
    paragraphs += ["> FADE OUT.", "> THE END <"]
    return "\n\n".join(paragraphs) + "\n"
