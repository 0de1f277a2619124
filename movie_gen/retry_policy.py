"""When to retry and how long to wait: exponential backoff, Retry-After, jitter, per-job budgets."""

from __future__ import annotations

import random

from .errors import RETRYABLE, MovieGenError, TransientLLMError
from .settings import Settings


def backoff_delay(settings: Settings, retries_done: int, exc: BaseException | None = None) -> float:
    """Seconds before the next attempt: base·2^n (2, 4, 8 s by default), at least what 429 asks."""
    delay = min(settings.retry_backoff_max, settings.retry_backoff_base * (2 ** retries_done))
    if settings.retry_jitter:
        delay = random.uniform(0, delay)
    if isinstance(exc, TransientLLMError) and exc.retry_after_s is not None:
        # as long as the server asks, but never past the longest wait (the broker's visibility
        # timeout is sized on it: a longer countdown would be delivered twice)
        delay = max(delay, min(exc.retry_after_s, settings.retry_backoff_max))
    return round(delay, 3)


def is_retryable(exc: BaseException) -> bool:
    """Timeouts, 429/5xx and unusable model output are retried; the rest fail at once."""
    return isinstance(exc, RETRYABLE)


def error_class(exc: BaseException) -> str:
    """A short name for the error's class as shown in attempt records."""
    return exc.kind if isinstance(exc, MovieGenError) else "unexpected"
