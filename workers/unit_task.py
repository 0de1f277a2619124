"""The task class of the bible and set tasks: Celery's retry, plus Retry-After and the model-call slot."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task
from celery.exceptions import Retry

from movie_gen.errors import TransientLLMError
from movie_gen.services import Services

log = logging.getLogger(__name__)


class UnitTask(Task):
    """A task that writes one unit of a job; its retry policy is declared on the task itself."""

    def retry(self, args: Any = None, kwargs: Any = None, exc: BaseException | None = None,
              throw: bool = True, eta: Any = None, countdown: float | None = None,
              max_retries: int | None = None, **options: Any) -> Any:
        """Celery's retry, waiting at least what a 429 asks, with the chosen wait recorded.

        `autoretry_for` computes the exponential backoff; a server's Retry-After can only make
        the wait longer, never past `retry_backoff_max` (the visibility timeout is sized on it).
        """
        if isinstance(exc, TransientLLMError) and exc.retry_after_s is not None:
            countdown = max(countdown or 0, min(exc.retry_after_s, self.retry_backoff_max))
        pending = getattr(exc, "pending_retry", None)
        if pending is not None and countdown is not None:
            pending.record_wait(exc, round(countdown, 3))
        return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)

    def wait_for_model_slot(self, svc: Services, slot_at: int | None, where: dict[str, Any]) -> None:
        """Wait for this attempt's start time under LLM_RATE_LIMIT, reserved once per attempt.

        A short wait sleeps; a longer one sends this message again for its slot, keeping the
        retry count (Task.retry would count a retry) and the reservation. So an attempt takes
        at most two messages, and rate-limit waits never use up the unit's retries.
        """
        settings = svc.settings
        if settings.llm_provider != "openai" and not settings.offline_latency_s:
            return  # the offline writer calls no model, unless it simulates one
        if slot_at is None:
            slot = svc.limiter.reserve()
            slot_at, wait = slot.at_ms, slot.wait_s
        else:
            wait = svc.limiter.wait_for(slot_at)
        if wait > settings.llm_rate_wait_max_s:
            countdown = round(min(wait, settings.retry_backoff_max), 3)
            log.info("rate limit: model call slot in %.2fs; message scheduled for it", wait,
                     extra={**where, "delay_s": countdown})
            svc.store.touch(where["job_id"])
            signature = self.signature_from_request(
                self.request, self.request.args, {**self.request.kwargs, "slot_at": slot_at},
                countdown=countdown)
            signature.apply_async()
            raise Retry(f"waiting {countdown}s for a model-call slot", when=countdown, sig=signature)
        if wait > 0:
            log.info("rate limit: model call in %.2fs", wait, extra={**where, "delay_s": round(wait, 3)})
            time.sleep(wait)
