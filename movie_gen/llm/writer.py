"""The interface every model provider implements: write a story bible, write one set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from movie_gen.story.story_bible import SetPlan


@dataclass
class LLMReply:
    """Parsed JSON from the model, the token usage of the call(s), and the output mode used.

    `usage` holds prompt_tokens, completion_tokens and model_calls (a bible written in batches
    is several calls); `mode` is json_schema, json_object or prompt (empty for the offline writer);
    `context` says what is known of the server's context size (empty for the offline writer).
    """

    data: Any
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""
    mode: str = ""
    context: str = ""

    @property
    def output_mode(self) -> str:
        """The job's `output_mode` info, e.g. "json_object (context 8192 tokens per request, from …)"."""
        return f"{self.mode} ({self.context})" if self.mode and self.context else self.mode


@dataclass(frozen=True)
class CallContext:
    """Who is calling (for logs and the offline writer's seeded faults), and what went wrong last time.

    `feedback` is the previous attempt's validation error; the writer puts it in the prompt.
    `pace` waits for the global rate limit: the writer calls it before each request of an
    attempt after the first (the task has waited for the first one's slot already).
    """

    job_id: str
    set_number: int | None = None
    attempt: int = 1
    feedback: str | None = None
    run: int = 1
    pace: Callable[[], None] | None = field(default=None, compare=False, repr=False)


class ScriptWriter(Protocol):
    """A source of story bibles and sets; the output is validated by the caller."""

    name: str

    def write_bible(self, idea: str, sets_total: int, segments_total: int,
                    ctx: CallContext) -> LLMReply: ...

    def write_set(self, idea: str, bible: dict[str, Any], plan: SetPlan,
                  ctx: CallContext) -> LLMReply: ...


def add_usage(total: dict[str, int] | None, usage: dict[str, int] | None) -> dict[str, int] | None:
    """The sum of two usage records; None (unknown) only when both are unknown."""
    if usage is None:
        return total
    if total is None:
        return dict(usage)
    return {k: total.get(k, 0) + usage.get(k, 0) for k in {*total, *usage}}
