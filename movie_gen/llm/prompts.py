"""Prompts for the story bible, its batches of set synopses and one set; the schema carries the structure."""

from __future__ import annotations

import json
from typing import Any

from movie_gen.story.story_bible import SetPlan, sets_in, synopsis_of

SYSTEM = (
    "You are a screenwriter for AI film and video production. You write in JSON that matches the "
    "given schema exactly. Visual prompts are concrete and self-contained so that an image or video "
    "model can render each shot; characters keep the same look in every shot."
)
BIBLE_KEYS = ("title", "logline", "tone", "characters", "locations")


def with_feedback(prompt: str, feedback: str | None) -> str:
    """The prompt, plus the previous attempt's validation error for the model to correct."""
    if not feedback:
        return prompt
    return (f"{prompt}\n\nYour previous answer to this request was rejected: {feedback}\n"
            "Correct that and answer again in full.")


def bible_prompt(idea: str, sets_total: int, segments_total: int, synopses: int | None = None) -> str:
    """Ask for the title, roster, locations and the first `synopses` set synopses (default: all)."""
    synopses = sets_total if synopses is None else synopses
    which = (f"exactly {sets_total} set synopses in order" if synopses == sets_total else
             f"the synopses of the first {synopses} of the {sets_total} sets, in order (the rest are "
             "written later)")
    return (
        f"Story idea: {idea}\n\n"
        f"Plan a film of {segments_total} segments (shots of a few seconds each), written in "
        f"{sets_total} consecutive sets. Write the story bible: a title, a logline, the tone, a roster "
        "of characters with short lowercase ids and a visual description precise enough to keep "
        f"faces and costumes identical across shots, the main locations, and {which}. Each "
        "synopsis says what happens in that set and how it ends, so that each set picks up exactly "
        "where the previous one ends. Every character and every location has its own distinct "
        "name (no name twice); write your own text for each field, not the schema's descriptions."
    )


def synopses_prompt(idea: str, bible: dict[str, Any], first: int, count: int, sets_total: int) -> str:
    """Ask for the synopses of sets `first`..`first+count-1`, after the previous batch's last one."""
    previous = bible["set_synopses"][-1]
    return (
        f"Story idea: {idea}\n\nStory bible:\n{_core(bible)}\n\n"
        f"The outline of this film has {sets_total} sets. Set {first - 1} is: {previous['summary']} "
        f"It ends with: {previous['ends_with']}\n"
        f"Write the synopses of sets {first} to {first + count - 1} (exactly {count}), in order. "
        "Each says what happens in that set and how it ends; each set picks up where the previous "
        "one ends, and the story keeps moving towards its ending in set "
        f"{sets_total}."
    )


NEIGHBOUR_CHARS = 160  # a neighbouring synopsis in a compact prompt (a request that overflowed)


def set_prompt(idea: str, bible: dict[str, Any], plan: SetPlan, compact: bool = False) -> str:
    """Ask for exactly the segments of one set, with the bible and the neighbouring synopses only.

    The bible may carry only those synopses (a set task reads its own and its neighbours'), with
    `sets_total` beside them. `compact` shortens the neighbouring synopses and leaves out the
    locations' descriptions, for a server whose context the full prompt overflowed.
    """
    here = synopsis_of(bible, plan.set_number)
    previous = synopsis_of(bible, plan.set_number - 1)
    following = synopsis_of(bible, plan.set_number + 1)
    cut = (lambda text: _shortened(text, NEIGHBOUR_CHARS)) if compact else (lambda text: text)
    before = cut(previous["ends_with"]) if previous else "the film opens"
    after = (f"The next set will be: {cut(following['summary'])}\n"
             if following else "This is the last set: it ends the film.\n")
    places = ", ".join(repr(loc["name"]) for loc in bible.get("locations", []))
    return (
        f"Story idea: {idea}\n\nStory bible:\n{_core(bible, compact)}\n\n"
        f"Write set {plan.set_number} of {sets_in(bible)}: segments {plan.first} to {plan.last} "
        f"(exactly {plan.count}), numbered {plan.first}..{plan.last} in order.\n"
        f"The previous set ended with: {before}\n"
        f"This set: {here['summary']}\nIt must end with: {here['ends_with']}\n{after}"
        "Use only the roster's character ids in 'characters' and 'dialogue', each at most once in "
        f"'characters'. Each 'location' is one of the bible's locations: {places}. Repeat each "
        "character's visual description in every visual_prompt they appear in. Write each "
        "dialogue line once; do not repeat a phrase over and over."
    )


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + "…"


def _core(bible: dict[str, Any], compact: bool = False) -> str:
    core = {k: bible[k] for k in BIBLE_KEYS if k in bible}
    if compact:
        core["locations"] = [loc["name"] for loc in bible.get("locations", [])]
        return json.dumps(core, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(core, ensure_ascii=False)
