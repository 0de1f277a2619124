"""A request that does not fit the server's context, read from each server's own error message.

Recognised (HTTP 400/413/422):
- OpenAI: error code `context_length_exceeded`, "This model's maximum context length is N tokens.
  However, your messages resulted in M tokens ..." (older: "you requested M tokens (P in the
  messages, C in the completion)").
- vLLM: "This model's maximum context length is N tokens. However, you requested M tokens (P in the
  messages, C in the completion)", or "... and your request has P input tokens".
- llama.cpp's llama-server: "request (M tokens) exceeds the available context size (N tokens), try
  increasing it" (type `exceed_context_size_error`, with `n_prompt_tokens` and `n_ctx`); M counts
  the prompt only.
- llama-cpp-python: "Requested tokens (M) exceed context window of N".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .request_params import MIN_REPLY_TOKENS

OVERFLOW_CODES = {"context_length_exceeded", "exceed_context_size_error", "string_above_max_length"}
_LLAMA_SERVER = re.compile(r"(?:request|input) \((\d+) tokens\) (?:exceeds the available|is larger than "
                           r"the max) context size \((\d+) tokens\)", re.I)
_MAX_CONTEXT = re.compile(r"maximum context length is (\d+) tokens", re.I)
_REQUESTED = re.compile(r"you requested (\d+) tokens(?: \((\d+) in the messages, (\d+) in the completion\))?",
                        re.I)
_MESSAGES = re.compile(r"(?:your messages resulted in|your request has) (\d+) (?:input )?tokens", re.I)
_LLAMA_CPP_PYTHON = re.compile(r"requested tokens \((\d+)\) exceed context window of (\d+)", re.I)
_GENERIC = re.compile(r"context length|context window|context size|maximum context|too many tokens|"
                      r"exceeds? the (?:model'?s? )?(?:max|context)", re.I)


@dataclass(frozen=True)
class Overflow:
    """What the server said: its context, the prompt's tokens, all tokens asked for (None: not said)."""

    context: int | None = None
    prompt: int | None = None
    requested: int | None = None
    message: str = ""


def _error_body(exc: Any) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    error = body.get("error", body) if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def _int(value: str | int | None) -> int | None:
    return int(value) if value not in (None, "") else None


def parse_overflow(status: int, message: str, body: dict[str, Any] | None = None) -> Overflow | None:
    """The overflow an error answer describes, or None when it is another error."""
    if status not in (400, 413, 422):
        return None
    body = body or {}
    code = str(body.get("code") or "") + " " + str(body.get("type") or "")
    found = _LLAMA_SERVER.search(message)
    if found:
        return Overflow(context=int(found.group(2)), prompt=int(found.group(1)), message=message)
    if body.get("n_ctx") and body.get("n_prompt_tokens"):
        return Overflow(context=int(body["n_ctx"]), prompt=int(body["n_prompt_tokens"]), message=message)
    found = _LLAMA_CPP_PYTHON.search(message)
    if found:
        return Overflow(context=int(found.group(2)), prompt=int(found.group(1)), message=message)
    context = _MAX_CONTEXT.search(message)
    if context:
        requested, messages = _REQUESTED.search(message), _MESSAGES.search(message)
        prompt = _int(requested.group(2)) if requested else None
        if messages:
            prompt = int(messages.group(1))
        return Overflow(context=int(context.group(1)), prompt=prompt,
                        requested=_int(requested.group(1)) if requested else None, message=message)
    if set(code.split()) & OVERFLOW_CODES or _GENERIC.search(message):
        return Overflow(message=message)
    return None


def overflow_of(exc: Any) -> Overflow | None:
    """The overflow an openai.APIStatusError reports, or None when it is another error."""
    body = _error_body(exc)
    message = str(body.get("message") or getattr(exc, "message", "")).strip()
    return parse_overflow(exc.status_code, message, body)


MARGIN_TOKENS = 16  # the server's count and ours may differ by a few tokens of chat template
MAX_SHRINKS = 3


@dataclass(frozen=True)
class Shrink:
    """How a request is made smaller after overflows: a lower reply limit, a compact prompt."""

    cap: int | None = None
    compact: bool = False
    steps: int = 0


def fitting_cap(overflow: Overflow, limit: int) -> int | None:
    """A reply limit below `limit` that fits the context the server named (None: none does).

    Without any number in the message, half the limit.
    """
    prompt = overflow.prompt
    if prompt is None and overflow.requested is not None:
        prompt = overflow.requested - limit
    if overflow.context and prompt is not None:
        room = overflow.context - prompt - MARGIN_TOKENS
        return room if MIN_REPLY_TOKENS <= room < limit else None
    if overflow.context is None and limit // 2 >= MIN_REPLY_TOKENS:
        return limit // 2
    return None


def next_shrink(overflow: Overflow, shrink: Shrink, limit: int) -> Shrink | None:
    """The smaller request to send next: a reply limit that fits, else a compact prompt (None: none left)."""
    if shrink.steps >= MAX_SHRINKS:
        return None
    cap = fitting_cap(overflow, limit)
    if cap is not None:
        return Shrink(cap=cap, compact=shrink.compact, steps=shrink.steps + 1)
    if not shrink.compact:
        return Shrink(cap=shrink.cap, compact=True, steps=shrink.steps + 1)
    return None
