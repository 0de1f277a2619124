"""The openai client's exceptions mapped to the domain errors that decide retrying."""

from __future__ import annotations

import json
from typing import Any

import openai

from ..errors import MovieGenError, PermanentLLMError, TransientLLMError
from .quota import quota_exhausted
from .refusals import is_context_overflow

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
        if is_context_overflow(exc):
            return PermanentLLMError(f"{detail} (set OPENAI_CONTEXT_TOKENS to the model's context size "
                                     "so that the reply limit leaves room for the prompt)")
        if status in RETRYABLE_STATUS or status >= 500:
            return TransientLLMError(detail, retry_after_s=retry_after)
        return PermanentLLMError(detail)
    if isinstance(exc, json.JSONDecodeError):
        return TransientLLMError(f"model server sent a malformed body: {exc}")
    if isinstance(exc, openai.APIError):
        return TransientLLMError(f"model call failed: {exc}")
    return PermanentLLMError(f"unexpected error calling the model: {exc!r}")
