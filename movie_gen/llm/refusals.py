"""Which part of a request a server refused (400/422, or a 500 that names the response format)."""

from __future__ import annotations

import re
from typing import Any

from .context_overflow import overflow_of
from .server_profile import OUTPUT_MODE, SCHEMA_KEYWORDS, SYSTEM_ROLE, TOKEN_PARAM, ServerProfile

_TOKEN_PARAM = re.compile(r"max_completion_tokens|max_tokens", re.I)
_SYSTEM = re.compile(r"system (?:role|message|prompt)|roles? must alternate|role ['\"]?system", re.I)
_SCHEMA_KEYWORD = re.compile(r"(?:minLength|maxLength|uniqueItems)|invalid schema|not permitted", re.I)
_FORMAT = re.compile(r"response_format|json_schema|json_object|'text' or 'json_object'|"
                     r"structured output|guided decoding|grammar", re.I)


def error_text(exc: Any) -> str:
    """The message and body of an openai.APIStatusError, as one string to search."""
    return f"{getattr(exc, 'message', '')} {getattr(exc, 'body', '')}"


def is_context_overflow(exc: Any) -> bool:
    """The server says the prompt plus the reply limit exceed the model's context (never a refused shape)."""
    return overflow_of(exc) is not None


def refused_feature(exc: Any, profile: ServerProfile) -> str | None:
    """The feature of the request shape that the server refused, or None if it is another error."""
    status, text = exc.status_code, error_text(exc)
    if status not in (400, 422, 500) or is_context_overflow(exc):
        return None
    if status == 500:  # a 500 is a shape refusal only when it names the response format
        return OUTPUT_MODE if profile.mode != "prompt" and _FORMAT.search(text) else None
    if _TOKEN_PARAM.search(text) and profile.token_param == "both":
        return TOKEN_PARAM
    if _SYSTEM.search(text) and profile.system_role:
        return SYSTEM_ROLE
    if _SCHEMA_KEYWORD.search(text) and profile.mode == "json_schema" and profile.schema_bounds:
        return SCHEMA_KEYWORDS
    return OUTPUT_MODE if profile.mode != "prompt" else None
