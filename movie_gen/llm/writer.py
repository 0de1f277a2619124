"""The interface every model provider implements: write a story bible, write one set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from ..story_bible import SetPlan


@dataclass
class LLMReply:
    """Parsed JSON from the model plus the token usage of the call."""

    data: Any
    usage: dict[str, int] = field(default_factory=dict)
    model: str = ""


@dataclass(frozen=True)
class CallContext:
    """Who is calling: used for logs and for the offline writer's seeded faults."""

    job_id: str
    set_number: int | None = None
    attempt: int = 1
    run: int = 1


class ScriptWriter(Protocol):
    """A source of story bibles and sets; the output is validated by the caller."""

    name: str

    def write_bible(self, idea: str, sets_total: int, segments_total: int,
                    ctx: CallContext) -> LLMReply: ...

    def write_set(self, idea: str, bible: dict[str, Any], plan: SetPlan,
                  ctx: CallContext) -> LLMReply: ...
