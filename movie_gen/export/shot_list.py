"""A CSV shot list for video tools: one row per segment, in order, with whole visual prompts."""

from __future__ import annotations

import csv
import io
from typing import Any

from .roster import character_looks, character_names

COLUMNS = ["segment_number", "set_number", "duration_seconds", "location", "characters", "camera",
           "visual_prompt", "dialogue", "narration"]


def visual_prompt(segment: dict[str, Any], names: dict[str, str], looks: dict[str, str]) -> str:
    """The segment's prompt, followed by each character's look from the bible that it lacks."""
    prompt = segment["visual_prompt"]
    missing = [f"{names.get(c, c)}: {looks[c]}" for c in segment["characters"]
               if looks.get(c) and looks[c] not in prompt]
    return "; ".join([prompt, *missing])


def to_csv(script: dict[str, Any]) -> str:
    """The shot list as CSV text with a header row (encode it as UTF-8)."""
    names, looks = character_names(script), character_looks(script)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for seg in script["segments"]:
        dialogue = " | ".join(f"{names.get(d['character'], d['character'])}: {d['line']}"
                              for d in seg["dialogue"])
        writer.writerow([seg["segment_number"], seg.get("set_number", ""), seg["duration_seconds"],
                         seg["location"], "; ".join(names.get(c, c) for c in seg["characters"]),
                         seg["camera"], visual_prompt(seg, names, looks), dialogue, seg["narration"]])
    return out.getvalue()
