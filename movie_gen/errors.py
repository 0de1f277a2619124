"""Domain errors: one type per failure class, so retry policy and HTTP mapping are decided once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import redis


class MovieGenError(Exception):
    """Base class of every error the pipeline reports on a job."""

    kind = "error"
    # Token usage of the failed attempt's calls: a dict when the server reported it (a reply that
    # failed validation was still paid for), None when unknown (a timed-out call, no reply at all).
    usage: dict[str, int] | None = None


class TransientLLMError(MovieGenError):
    """The model call failed in a way that may succeed on another attempt (timeout, 429, 5xx)."""

    kind = "transient"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreUnavailable(TransientLLMError):
    """Redis did not answer (restarting, a dropped connection) beyond the client's own retries."""

    kind = "store"


class StorageUnavailable(TransientLLMError):
    """The output storage (an S3-compatible server) did not answer, or answered "try later"."""

    kind = "storage_unavailable"


class InvalidModelOutput(MovieGenError):
    """The model answered, but its output is unusable (unparseable, truncated, fails validation)."""

    kind = "invalid_output"


class PermanentLLMError(MovieGenError):
    """The model call cannot succeed by retrying (bad key, unknown model, refusal, bad request)."""

    kind = "permanent"


class ContextOverflow(PermanentLLMError):
    """The request does not fit the model server's context, even after shrinking it.

    Never a refused request shape: no other output mode is tried for it. The message names the
    limit that was hit (the server's context, the prompt, the reply limit) and what to change.
    """

    kind = "context_overflow"


class QuotaExhausted(PermanentLLMError):
    """The account's quota or billing is exhausted: no model call can succeed before `not_before`.

    Not retried with backoff: the job's remaining calls should stop and be scheduled for later.
    """

    kind = "quota"

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.not_before = datetime.now(timezone.utc) + timedelta(seconds=retry_after_s)

    @property
    def not_before_iso(self) -> str:
        """`not_before` as an ISO timestamp in UTC, e.g. 2026-11-29T05:00:00.000Z."""
        return self.not_before.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StorageError(MovieGenError):
    """Writing a result failed for good (permission denied, disk full, no such bucket)."""

    kind = "storage"


class LeaseLost(Exception):
    """This attempt no longer holds its unit's lease (another delivery took over, or the job
    ended): it must not write anything, nor report an outcome."""

    def __init__(self, message: str, job_ended: bool = False) -> None:
        super().__init__(message)
        self.job_ended = job_ended


RETRYABLE = (TransientLLMError, InvalidModelOutput)
STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError)
