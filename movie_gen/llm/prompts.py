"""Prompts for the story bible and for one set; the schema carries the exact structure."""

from __future__ import annotations

import json
from typing import Any

from ..story_bible import SetPlan, sets_in, synopsis_of

SYSTEM = (
    "You are a screenwriter for AI film and video production. You write in JSON that matches the "
    "given schema exactly. Visual prompts are concrete and self-contained so that an image or video "
    "model can render each shot; characters keep the same look in every shot."
)


def bible_prompt(idea: str, sets_total: int, segments_total: int) -> str:
    """Ask for the title, roster, locations and one synopsis per set."""
    return (
        f"Story idea: {idea}\n\n"
        f"Plan a film of {segments_total} segments (shots of a few seconds each), written in "
        f"{sets_total} consecutive sets. Write the story bible: a title, a logline, the tone, a roster "
        "of characters with short lowercase ids and a visual description precise enough to keep "
        f"faces and costumes identical across shots, the main locations, and exactly {sets_total} set "
        "synopses in order. Each synopsis says what happens in that set and how it ends, so that "
        "each set picks up exactly where the previous one ends."
    )


def set_prompt(idea: str, bible: dict[str, Any], plan: SetPlan) -> str:
    """Ask for exactly the segments of one set, with the bible as shared context."""
    here = synopsis_of(bible, plan.set_number)
    previous = synopsis_of(bible, plan.set_number - 1)
    before = previous["ends_with"] if previous else "the film opens"
    context = {k: bible[k] for k in ("title", "logline", "tone", "characters", "locations")}
    return (
        f"Story idea: {idea}\n\nStory bible:\n{json.dumps(context, ensure_ascii=False)}\n\n"
        f"Write set {plan.set_number} of {sets_in(bible)}: segments {plan.first} to {plan.last} "
        f"(exactly {plan.count}), numbered {plan.first}..{plan.last} in order.\n"
        f"The previous set ended with: {before}\n"
        f"This set: {here['summary']}\nIt must end with: {here['ends_with']}\n"
        "Use only the roster's character ids in 'characters' and 'dialogue'. Repeat each character's "
        "visual description in every visual_prompt they appear in."
    )
