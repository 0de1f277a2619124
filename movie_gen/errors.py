"""Domain errors: one type per failure class, so retry policy and HTTP mapping are decided once."""

from __future__ import annotations

import redis


class MovieGenError(Exception):
    """Base class of every error the pipeline reports on a job."""

    kind = "error"
    usage: dict[str, int] | None = None  # token usage of a call whose reply was unusable


class TransientLLMError(MovieGenError):
    """The model call failed in a way that may succeed on another attempt (timeout, 429, 5xx)."""

    kind = "transient"

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StoreUnavailable(TransientLLMError):
    """Redis did not answer (restarting, a dropped connection) beyond the client's own retries."""

    kind = "store"


class InvalidModelOutput(MovieGenError):
    """The model answered, but its output is unusable (unparseable, truncated, fails validation)."""

    kind = "invalid_output"


class PermanentLLMError(MovieGenError):
    """The model call cannot succeed by retrying (bad key, unknown model, refusal, bad request)."""

    kind = "permanent"


class StorageError(MovieGenError):
    """Writing a result to disk failed (permission denied, disk full)."""

    kind = "storage"


class LeaseLost(Exception):
    """This attempt no longer holds its unit's lease (another delivery took over, or the job
    ended): it must not write anything, nor report an outcome."""


RETRYABLE = (TransientLLMError, InvalidModelOutput)
STORE_ERRORS = (redis.ConnectionError, redis.TimeoutError)
