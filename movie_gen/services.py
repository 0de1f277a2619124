"""The services a worker or the web app uses, built once per process from the settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from movie_gen.config.settings import Settings, get_settings
from movie_gen.llm.rate_limit import LLMRateLimiter
from movie_gen.storage.object_store import OutputStore, open_store
from movie_gen.store.idempotency import IdempotencyKeys
from movie_gen.store.job_store import JobStore

from .llm import ScriptWriter, get_writer


@dataclass
class Services:
    """Settings plus the job store, the output store, the model writer and the global rate limiter."""

    settings: Settings = field(default_factory=get_settings)
    patient_store: bool = False  # workers ride out a Redis restart; the web answers 503 at once

    @cached_property
    def store(self) -> JobStore:
        bound = None if self.patient_store else self.settings.web_redis_connections
        return JobStore.from_url(self.settings.redis_url, self.settings.job_ttl_s, self.patient_store,
                                 max_connections=bound)

    @cached_property
    def storage(self) -> OutputStore:
        return open_store(self.settings)

    @cached_property
    def writer(self) -> ScriptWriter:
        return get_writer(self.settings)

    @cached_property
    def idempotency(self) -> IdempotencyKeys:
        return IdempotencyKeys(self.store.redis, self.settings.idempotency_ttl_s)

    @cached_property
    def limiter(self) -> LLMRateLimiter:
        return LLMRateLimiter(self.store.redis, self.settings.llm_rate_limit)


_services: Services | None = None


def get_services() -> Services:
    """The process-wide services (one Redis pool, one model client)."""
    global _services
    if _services is None:
        _services = Services()
    return _services


def use_worker_services() -> None:
    """Make this process's services those of a worker (a patient job store)."""
    global _services
    _services = Services(patient_store=True)
