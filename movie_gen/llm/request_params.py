"""Request parameters that fit the server: messages, the reply's token limit and its parameter, sampling."""

from __future__ import annotations

import json
from typing import Any

from movie_gen.config.settings import Settings

from ..errors import ContextOverflow

CHARS_PER_TOKEN = 3  # a cautious estimate (English runs near 4): better a smaller reply than a 400
MESSAGE_OVERHEAD_TOKENS = 64
MIN_REPLY_TOKENS = 256


def messages(system: str, prompt: str, system_role: bool) -> list[dict[str, str]]:
    """The chat messages; without a system role the system text opens the user message."""
    if system_role:
        return [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    return [{"role": "user", "content": f"{system}\n\n{prompt}"}]


def prompt_tokens_estimate(*parts: Any) -> int:
    """A cautious token count of everything sent (texts, and schemas as JSON)."""
    chars = sum(len(p) if isinstance(p, str) else len(json.dumps(p)) for p in parts if p)
    return chars // CHARS_PER_TOKEN + MESSAGE_OVERHEAD_TOKENS


def reply_limit(settings: Settings, prompt_tokens: int, context_tokens: int | None = None,
                source: str = "OPENAI_CONTEXT_TOKENS") -> int:
    """min(OPENAI_MAX_TOKENS, context − prompt estimate); refuses what leaves no room.

    The context is OPENAI_CONTEXT_TOKENS, else `context_tokens` (what the server reported).
    """
    context = settings.openai_context_tokens or context_tokens
    if not context:
        return settings.openai_max_tokens
    if settings.openai_context_tokens:
        source = "OPENAI_CONTEXT_TOKENS"
    room = context - prompt_tokens
    if room < MIN_REPLY_TOKENS:
        raise ContextOverflow(
            f"the prompt (about {prompt_tokens} tokens) leaves {max(room, 0)} tokens of the "
            f"context of {context} tokens ({source}) for the reply (at least {MIN_REPLY_TOKENS} "
            "needed): use fewer segments per set, or a server with more context per request")
    return min(settings.openai_max_tokens, room)


def token_limit(param: str, limit: int) -> dict[str, int]:
    """The reply limit under the parameter name(s) the server reads."""
    if param == "both":
        return {"max_completion_tokens": limit, "max_tokens": limit}
    return {param: limit}


def sampling(settings: Settings) -> dict[str, float]:
    """temperature and top_p when set (the server's defaults otherwise)."""
    values = {"temperature": settings.openai_temperature, "top_p": settings.openai_top_p}
    return {k: v for k, v in values.items() if v is not None}
