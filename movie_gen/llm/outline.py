"""Outlines of any length: the bible with as many set synopses as fit one reply, then batches of the rest."""

from __future__ import annotations

from typing import Any, Callable

from ..errors import MovieGenError
from ..story_bible import (
    bible_json_schema,
    synopses_json_schema,
    synopses_per_reply,
    validate_bible,
    validate_synopses,
)
from . import prompts
from .writer import LLMReply, add_usage

# ask(prompt, schema_name, schema) -> reply; budget(prompt, schema) -> reply tokens it may use
Ask = Callable[[str, str, dict[str, Any]], LLMReply]
Budget = Callable[[str, dict[str, Any]], int]


def write_outline(ask: Ask, budget: Budget, idea: str, sets_total: int, segments_total: int,
                  feedback: str | None = None) -> LLMReply:
    """The whole story bible in as few replies as fit; usage sums every call (also on errors)."""
    usage: dict[str, int] | None = None
    try:
        probe = prompts.bible_prompt(idea, sets_total, segments_total)
        first = min(sets_total, synopses_per_reply(budget(probe, bible_json_schema(1)), with_bible=True))
        reply = ask(prompts.with_feedback(prompts.bible_prompt(idea, sets_total, segments_total, first),
                                          feedback), "story_bible", bible_json_schema(first))
        usage = add_usage(usage, reply.usage)
        if first == sets_total:
            return reply
        bible = validate_bible(reply.data, first)  # a broken start is not worth more calls
        while len(bible["set_synopses"]) < sets_total:
            start = len(bible["set_synopses"]) + 1
            probe = prompts.synopses_prompt(idea, bible, start, 1, sets_total)
            count = min(sets_total - start + 1,
                        synopses_per_reply(budget(probe, synopses_json_schema(1)), with_bible=False))
            prompt = prompts.synopses_prompt(idea, bible, start, count, sets_total)
            reply = ask(prompts.with_feedback(prompt, feedback), f"story_synopses_{start}",
                        synopses_json_schema(count))
            usage = add_usage(usage, reply.usage)
            items = reply.data.get("set_synopses") if isinstance(reply.data, dict) else None
            bible["set_synopses"] += validate_synopses(items, start, count)
    except MovieGenError as exc:
        known = add_usage(usage, exc.usage)
        if usage is not None and exc.usage is None:
            known = add_usage(known, {"unknown_calls": 1})  # e.g. a timed-out batch
        exc.usage = known
        raise
    return LLMReply(data=bible, usage=usage or {}, model=reply.model, mode=reply.mode)
