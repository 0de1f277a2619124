"""The openai client's exceptions mapped to the domain errors that decide retrying."""

from __future__ import annotations

import json
from typing import Any

import openai

from ..errors import ContextOverflow, MovieGenError, PermanentLLMError, TransientLLMError
from .context_overflow import Overflow, overflow_of
from .quota import quota_exhausted

RETRYABLE_STATUS = {408, 409, 429}


def retry_after_seconds(headers: Any) -> float | None:
    """The wait a 429/503 asks for, from `retry-after-ms` or `retry-after` (seconds)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw:
            try:
                return max(0.0, float(raw) * scale)
            except ValueError:
                continue
    return None


def classify(exc: BaseException, quota_wait_s: float = 3600.0) -> MovieGenError:
    """Map an exception from the openai client to the domain error that decides retrying."""
    if isinstance(exc, MovieGenError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return TransientLLMError(f"model call timed out: {exc}")
    if isinstance(exc, openai.APIConnectionError):
        return TransientLLMError(f"cannot reach the model server: {exc}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = f"model server answered HTTP {status}: {exc.message}"
        retry_after = retry_after_seconds(exc.response.headers)
        quota = quota_exhausted(exc, quota_wait_s, retry_after)
        if quota is not None:
            return quota
        overflow = overflow_of(exc)
        if overflow is not None:
            return overflow_error(overflow, detail)
        if status in RETRYABLE_STATUS or status >= 500:
            return TransientLLMError(detail, retry_after_s=retry_after)
        return PermanentLLMError(detail)
    if isinstance(exc, json.JSONDecodeError):
        return TransientLLMError(f"model server sent a malformed body: {exc}")
    if isinstance(exc, openai.APIError):
        return TransientLLMError(f"model call failed: {exc}")
    return PermanentLLMError(f"unexpected error calling the model: {exc!r}")


def overflow_error(overflow: Overflow, detail: str, reply_limit: int | None = None) -> ContextOverflow:
    """The error of a request that does not fit, naming the limit that was hit and what to change."""
    context = f"the server's context of {overflow.context} tokens per request" if overflow.context \
        else "the server's context"
    if overflow.prompt is not None and overflow.context and overflow.prompt >= overflow.context:
        what = f"the prompt alone ({overflow.prompt} tokens) exceeds {context}"
    elif overflow.prompt is not None:
        what = (f"the prompt ({overflow.prompt} tokens) plus the reply limit"
                f"{f' ({reply_limit} tokens)' if reply_limit else ''} exceed {context}")
    else:
        what = f"the request exceeds {context}"
    return ContextOverflow(
        f"{what}: {detail}; use fewer segments per set (segments_per_set), a lower OPENAI_MAX_TOKENS, "
        "or give each request more context (llama-server: -c divided by -np per slot, at most the "
        "model's training context; vLLM: --max-model-len), see docs/models.md")
