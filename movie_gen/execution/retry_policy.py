"""The retry policy of a unit, whole: Celery's task options, the wait a server asks for, and the
job's own budget. Nothing else decides whether or when a unit is tried again.

- Which errors, and how long to wait: Celery's `autoretry_for` with exponential backoff (2, 4, 8 s
  by default, `RETRY_BACKOFF_*`), on the transient model errors and on the job store's connection
  errors outside an attempt.
- A server's Retry-After can only make that wait longer, never past `retry_backoff_max` (the
  Redis broker's visibility timeout is sized on it).
- How many: the job's `max_retries` (0-10), checked against the attempt number that each message
  carries and that the job store claims (`JobStore.claim_attempt`), so a copy of a message never
  spends the budget twice. Celery's own `max_retries` is only the API's ceiling, 10.
"""

from __future__ import annotations

from typing import Any

from movie_gen.config.settings import Settings
from movie_gen.errors import RETRYABLE, STORE_ERRORS, MovieGenError, TransientLLMError

TRANSIENT = (*RETRYABLE, *STORE_ERRORS)
MAX_RETRIES_CEILING = 10


def unit_task_options(settings: Settings) -> dict[str, Any]:
    """Celery's options of the bible and set tasks: what is retried, and the backoff."""
    return dict(autoretry_for=TRANSIENT, max_retries=MAX_RETRIES_CEILING,
                retry_backoff=settings.retry_backoff_base, retry_backoff_max=settings.retry_backoff_max,
                retry_jitter=settings.retry_jitter)


def retry_countdown(exc: BaseException | None, countdown: float | None, backoff_max: float) -> float | None:
    """The backoff's wait, or longer when the server asked for it (Retry-After), up to the max."""
    if isinstance(exc, TransientLLMError) and exc.retry_after_s is not None:
        return max(countdown or 0, min(exc.retry_after_s, backoff_max))
    return countdown


def attempts_allowed(context: dict[str, Any]) -> int:
    """The job's budget: `max_retries + 1` attempts of each unit per run."""
    return int(context.get("max_retries") or context["request"]["max_retries"]) + 1


def may_retry(context: dict[str, Any], attempt: int, exc: BaseException) -> bool:
    """Whether a failed `attempt` is tried again: a retryable error, within the job's budget."""
    return isinstance(exc, RETRYABLE) and attempt < attempts_allowed(context)


def error_class(exc: BaseException) -> str:
    """A short name for the error's class as shown in attempt records."""
    return exc.kind if isinstance(exc, MovieGenError) else "unexpected"
