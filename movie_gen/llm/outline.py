"""Outlines of any length: the bible with as many set synopses as fit one reply, then batches of the rest."""

from __future__ import annotations

from typing import Any, Callable

from movie_gen.story.story_bible import (
    bible_json_schema,
    synopses_json_schema,
    synopses_per_reply,
    validate_bible,
    validate_synopses,
)

from ..errors import MovieGenError
from . import prompts
from .writer import LLMReply, add_usage

# ask(prompt, schema_name, schema) -> reply; budget(prompt, schema) -> reply tokens it may use
Ask = Callable[[str, str, dict[str, Any]], LLMReply]
Budget = Callable[[str, dict[str, Any]], int]


def write_outline(ask: Ask, budget: Budget, idea: str, sets_total: int, segments_total: int,
                  feedback: str | None = None) -> LLMReply:
    """The whole story bible in as few replies as fit; usage sums every call (also on errors).

    A failed call adds its own usage, or one `unknown_calls` when the server reported none (a
    timed-out batch); a reply that fails validation was counted when it arrived.
    """
    usage: dict[str, int] | None = None

    def call(prompt: str, name: str, schema: dict[str, Any]) -> LLMReply:
        nonlocal usage
        try:
            reply = ask(prompts.with_feedback(prompt, feedback), name, schema)
        except MovieGenError as exc:
            lost = exc.usage if exc.usage is not None else ({"unknown_calls": 1} if usage else None)
            exc.usage = add_usage(usage, lost)
            raise
        usage = add_usage(usage, reply.usage)
        return reply

    def checked(check: Callable[[], Any]) -> Any:
        try:
            return check()
        except MovieGenError as exc:
            exc.usage = usage
            raise

    probe = prompts.bible_prompt(idea, sets_total, segments_total)
    first = min(sets_total, synopses_per_reply(budget(probe, bible_json_schema(1)), with_bible=True))
    reply = call(prompts.bible_prompt(idea, sets_total, segments_total, first), "story_bible",
                 bible_json_schema(first))
    if first == sets_total:
        return reply
    checked(lambda: validate_bible(reply.data, first))  # a broken start is not worth more calls
    bible = reply.data  # as written: the caller checks the whole against the schema of all synopses
    while len(bible["set_synopses"]) < sets_total:
        start = len(bible["set_synopses"]) + 1
        probe = prompts.synopses_prompt(idea, bible, start, 1, sets_total)
        room = checked(lambda: budget(probe, synopses_json_schema(1)))
        count = min(sets_total - start + 1, synopses_per_reply(room, with_bible=False))
        reply = call(prompts.synopses_prompt(idea, bible, start, count, sets_total),
                     f"story_synopses_{start}", synopses_json_schema(count))
        bible["set_synopses"] += checked(lambda: validate_synopses(reply.data, start, count))
    return LLMReply(data=bible, usage=usage or {}, model=reply.model, mode=reply.mode, context=reply.context)
