"""The offline provider: a deterministic built-in writer for demos and tests without an API key.

It weaves the idea, the title and the roster into its text and passes the same validation as a
model's output. `OFFLINE_FAIL_SETS`, `OFFLINE_FAIL_RATE` and `OFFLINE_LATENCY_S` make it fail or
slow down on purpose, so that retries and partial results can be shown without a real model.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
from typing import Any

from movie_gen.config.settings import Settings
from movie_gen.story.segments import TIMES_OF_DAY
from movie_gen.story.story_bible import SetPlan, synopsis_of

from ..errors import TransientLLMError
from .writer import CallContext, LLMReply

FIRST_NAMES = ["Mara", "Elias", "Noor", "Tobin", "Ines", "Kaito", "Bea", "Ravi", "Sol", "Vera"]
ROLES = ["protagonist", "ally", "antagonist", "mentor"]
LOOKS = [
    "mid-thirties, short copper hair, freckles, weathered olive raincoat over a grey knit sweater",
    "lanky, late twenties, black curls, round wire glasses, mustard corduroy jacket, red scarf",
    "fifties, silver buzz cut, scar across the left eyebrow, long charcoal wool coat, leather gloves",
    "seventies, white braid, deep-set blue eyes, patched denim overalls, brass pocket watch",
]
PLACES = [("the harbour", "wet cobblestones, sodium lamps, gulls over moored boats"),
          ("the archive", "dusty shelves to the ceiling, green reading lamps, tall arched windows"),
          ("the rooftop", "tar roof, water tanks, the city skyline glittering below"),
          ("the old station", "cracked tiles, a stopped clock, pigeons under a glass canopy")]
CAMERAS = ["wide establishing shot, slow push in", "medium two-shot, handheld",
           "close-up, shallow depth of field", "over-the-shoulder, static",
           "low-angle tracking shot", "aerial drone pull-back"]
MOODS = ["quiet tension", "wonder", "dread", "warmth", "urgency", "bittersweet calm"]
BEATS = ["setup", "inciting incident", "rising stakes", "midpoint turn", "crisis", "climax",
         "resolution"]


def _digest(*parts: Any) -> int:
    return int(hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:12], 16)


SMALL_WORDS = {"a", "an", "the", "of", "that", "who", "which", "and", "or", "to", "in", "on", "at",
               "only", "with", "for", "from", "by", "inside", "during", "into", "over", "under",
               "after", "before"}


def _title(idea: str) -> str:
    words = [w.strip(".,!?;:'\"") for w in idea.split()]
    words = [w for w in words if w][:7] or ["Untitled"]
    while len(words) > 1 and words[-1].lower() in SMALL_WORDS:
        words.pop()
    return " ".join(w[:1].upper() + w[1:] for w in words)[:120]


def _gist(idea: str, limit: int = 160) -> str:
    """The idea, cut at a word boundary so that every text field stays within its length bounds."""
    return idea if len(idea) <= limit else idea[:limit].rsplit(" ", 1)[0] + "…"


NO_TOKENS = {"prompt_tokens": 0, "completion_tokens": 0}  # it calls no model: nothing is spent


class OfflineWriter:
    """Deterministic story writer: same idea, same story."""

    name = "offline"

    def __init__(self, settings: Settings) -> None:
        self.fail_sets = settings.offline_fail_sets
        self.fail_first_run_sets = settings.offline_fail_first_run_sets
        self.crash_sets = settings.offline_crash_sets
        self.fail_rate = settings.offline_fail_rate
        self.latency_s = settings.offline_latency_s
        self.seed = settings.offline_seed

    def _call_faults(self, ctx: CallContext) -> None:
        if self.latency_s:
            time.sleep(self.latency_s)
        if ctx.set_number is not None and ctx.set_number in self.crash_sets:
            os.kill(os.getpid(), signal.SIGKILL)  # as an out-of-memory kill would (OFFLINE_CRASH_SETS)
        if ctx.set_number is not None and ctx.set_number in self.fail_sets:
            raise TransientLLMError(
                f"offline writer: set {ctx.set_number} is configured to fail (OFFLINE_FAIL_SETS)")
        if ctx.set_number in self.fail_first_run_sets and ctx.run == 1:
            raise TransientLLMError(f"offline writer: set {ctx.set_number} is configured to fail in "
                                    "the job's first run (OFFLINE_FAIL_FIRST_RUN_SETS)")
        if self.fail_rate:
            draw = random.Random(_digest(self.seed, ctx.job_id, ctx.set_number, ctx.attempt)).random()
            if draw < self.fail_rate:
                raise TransientLLMError("offline writer: simulated transient failure (OFFLINE_FAIL_RATE)")

    def write_bible(self, idea: str, sets_total: int, segments_total: int,
                    ctx: CallContext) -> LLMReply:
        """A bible built from the idea: title from its words, a roster of four, one synopsis per set."""
        self._call_faults(ctx)
        rng = random.Random(_digest(idea))
        names = rng.sample(FIRST_NAMES, 4)
        characters = [{"id": name.lower(), "name": name, "role": role, "visual_description": look}
                      for name, role, look in zip(names, ROLES, LOOKS)]
        title = _title(idea)
        gist = _gist(idea)
        lead, ally, rival = names[0], names[1], names[2]
        synopses = []
        for n in range(1, sets_total + 1):
            beat = BEATS[min(len(BEATS) - 1, (n - 1) * len(BEATS) // sets_total)]
            place = PLACES[(n - 1) % len(PLACES)][0]
            synopses.append({
                "summary": f"{beat.capitalize()}: {lead} and {ally} pursue '{gist}' at {place}, "
                           f"while {rival} closes in.",
                "ends_with": f"{lead} holds a clue that points beyond {place} (end of part {n}).",
            })
        data = {"title": title, "logline": f"{lead}, a reluctant hero, must face this: {gist}",
                "tone": "cinematic drama with moments of wonder",
                "characters": characters,
                "locations": [{"name": n, "description": d} for n, d in PLACES],
                "set_synopses": synopses}
        return LLMReply(data=data, usage=dict(NO_TOKENS),
                        model="offline")

    def write_set(self, idea: str, bible: dict[str, Any], plan: SetPlan,
                  ctx: CallContext) -> LLMReply:
        """Exactly the segments of `plan`, numbered globally, using only roster ids."""
        self._call_faults(ctx)
        roster = bible["characters"]
        synopsis = synopsis_of(bible, plan.set_number)
        segments = []
        for number in range(plan.first, plan.last + 1):
            a, b = roster[number % len(roster)], roster[(number + 1) % len(roster)]
            place = bible["locations"][(plan.set_number - 1) % len(bible["locations"])]
            segments.append({
                "segment_number": number,
                "location": place["name"],
                "time_of_day": TIMES_OF_DAY[(number // 3) % len(TIMES_OF_DAY)],
                "characters": [a["id"], b["id"]],
                "action": f"{a['name']} and {b['name']} move through {place['name']}: "
                          f"{synopsis['summary']} (beat {number - plan.first + 1} of {plan.count})",
                "visual_prompt": f"{bible['title']}, {place['name']} ({place['description']}); "
                                 f"{a['name']}: {a['visual_description']}; "
                                 f"{b['name']}: {b['visual_description']}",
                "camera": CAMERAS[number % len(CAMERAS)],
                "dialogue": [{"character": a["id"], "line": f"We came here because of {idea[:80]}."
                              if number == plan.first else f"{place['name'].capitalize()}, beat "
                              f"{number - plan.first + 1}: stay with me, {b['name']}."},
                             {"character": b["id"], "line": f"Then we finish beat "
                              f"{number - plan.first + 1}, {a['name']}."}],
                "narration": f"Segment {number}: {synopsis['ends_with']}" if number == plan.last
                             else f"Segment {number} of {bible['title']}.",
                "mood": MOODS[number % len(MOODS)],
                "duration_seconds": 4 + number % 5,
            })
        data = {"segments": segments}
        return LLMReply(data=data, usage=dict(NO_TOKENS),
                        model="offline")
