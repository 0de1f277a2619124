"""The one settings object: every environment variable the service reads, typed, with defaults."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


def _int(env: Mapping[str, str], name: str, default: int, low: int | None = None) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if low is not None and value < low:
        raise SettingsError(f"{name} must be >= {low}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, low: float = 0.0,
           high: float | None = None) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < low or (high is not None and value > high):
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _optional_float(env: Mapping[str, str], name: str, low: float, high: float) -> float | None:
    if not env.get(name):
        return None
    return _float(env, name, 0.0, low=low, high=high)


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = (env.get(name) or default).strip().lower()
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def _int_list(env: Mapping[str, str], name: str) -> frozenset[int]:
    raw = env.get(name, "")
    try:
        return frozenset(int(part) for part in raw.replace(" ", "").split(",") if part)
    except ValueError:
        raise SettingsError(f"{name} must be comma-separated set numbers, got {raw!r}") from None


AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
BROKER_SCHEMES = (*AMQP_SCHEMES, "redis", "rediss", "redis+socket")


def _broker_url(env: Mapping[str, str]) -> str:
    """BROKER_URL, checked by its scheme only (the rest may hold a password: never echoed)."""
    raw = (env.get("BROKER_URL") or "").strip()
    scheme = raw.split("://", 1)[0] if "://" in raw else ""
    if raw and scheme not in BROKER_SCHEMES:
        raise SettingsError(f"BROKER_URL must start with one of "
                            f"{', '.join(s + '://' for s in BROKER_SCHEMES)}, got {scheme or 'no scheme'!r}")
    return raw


def _output(env: Mapping[str, str]) -> dict[str, Any]:
    """OUTPUT_URL (`s3://bucket/prefix`, or a local directory as a path or `file://` URL), else
    OUTPUT_ROOT: the local root of the files and the object storage URL ('' for local files)."""
    url = (env.get("OUTPUT_URL") or "").strip()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "s3" and url[5:].strip("/"):  # the rest may name a prefix, never a password
        return {"output_root": Path(env.get("OUTPUT_ROOT") or "output").resolve(), "output_url": url}
    if scheme not in ("", "file"):
        raise SettingsError("OUTPUT_URL must be s3://bucket/prefix, a file:// URL or a path, "
                            f"got {scheme + '://…'!r}")
    local = url.removeprefix("file://") or env.get("OUTPUT_ROOT") or "output"
    return {"output_root": Path(local).resolve(), "output_url": ""}


STRUCTURED_OUTPUTS = ("auto", "json_schema", "json_object", "prompt")
TOKEN_PARAMS = ("auto", "both", "max_completion_tokens", "max_tokens")


@dataclass(frozen=True)
class Settings:
    """Configuration of the web app, the workers and the CLI."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    output_root: Path = Path("output")
    output_url: str = ""  # s3://bucket/prefix: scripts go to object storage, not under output_root
    llm_provider: str = "offline"
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_timeout_s: float = 120.0
    openai_max_tokens: int = 16000
    openai_context_tokens: int = 0
    openai_token_param: str = "auto"
    openai_system_role: str = "auto"
    openai_temperature: float | None = None
    openai_top_p: float | None = None
    llm_structured_output: str = "auto"
    quota_retry_after_s: int = 3600
    offline_fail_sets: frozenset[int] = field(default_factory=frozenset)
    offline_fail_rate: float = 0.0
    offline_latency_s: float = 0.0
    offline_seed: int = 0
    offline_crash_sets: frozenset[int] = field(default_factory=frozenset)
    retry_backoff_base: int = 2
    retry_backoff_max: int = 3600
    retry_jitter: bool = False
    llm_rate_limit: str = "30/minute"
    llm_rate_wait_max_s: float = 30.0
    job_ttl_s: int = 7 * 24 * 3600
    task_time_limit_s: int = 600
    log_format: str = "text"
    log_level: str = "INFO"
    api_url: str = "http://127.0.0.1:8000"
    web_port: int = 8000
    web_workers: int = 2
    worker_concurrency: int = 2
    flower_port: int = 5555
    flower_basic_auth: str | None = field(default=None, repr=False)
    state_dir: Path = Path(".movie-gen")
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    client_api_key: str | None = field(default=None, repr=False)
    api_rate_limit: str = "60/minute"
    max_request_bytes: int = 1024 * 1024
    idempotency_ttl_s: int = 24 * 3600
    stall_timeout_s: int = 0
    offline_fail_first_run_sets: frozenset[int] = field(default_factory=frozenset)
    sync_wait_s: float = 0.0
    long_polls_per_key: int = 50
    body_timeout_s: float = 10.0
    header_timeout_s: int = 10
    web_connections: int = 1000
    web_redis_connections: int = 3
    trusted_proxies: int = 0
    server_secret: str | None = field(default=None, repr=False)
    auth_failure_limit: str = "10/minute"
    allow_no_api_keys: bool = True
    lease_ttl_s: float = 60.0
    recovery_interval_s: float = 10.0
    delivery_limit: int = 3
    broker_url: str = field(default="", repr=False)  # empty: the broker is REDIS_URL

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Read every setting from the environment (or the mapping given)."""
        env = os.environ if env is None else env
        provider = env.get("LLM_PROVIDER", "").strip().lower()
        if not provider:
            provider = "openai" if env.get("OPENAI_API_KEY") else "offline"
        if provider not in ("openai", "offline"):
            raise SettingsError(f"LLM_PROVIDER must be 'openai' or 'offline', got {provider!r}")
        log_format = env.get("LOG_FORMAT", "text").lower()
        if log_format not in ("text", "json"):
            raise SettingsError(f"LOG_FORMAT must be 'text' or 'json', got {log_format!r}")
        return cls(
            redis_url=env.get("REDIS_URL") or cls.redis_url,
            **_output(env),
            llm_provider=provider,
            openai_api_key=env.get("OPENAI_API_KEY") or None,
            openai_base_url=env.get("OPENAI_BASE_URL") or None,
            openai_model=env.get("OPENAI_MODEL") or cls.openai_model,
            openai_timeout_s=_float(env, "OPENAI_TIMEOUT_S", cls.openai_timeout_s, low=0.1),
            openai_max_tokens=_int(env, "OPENAI_MAX_TOKENS", cls.openai_max_tokens, low=256),
            openai_context_tokens=_int(env, "OPENAI_CONTEXT_TOKENS", 0, low=0),
            openai_token_param=_choice(env, "OPENAI_TOKEN_PARAM", "auto", TOKEN_PARAMS),
            openai_system_role=_choice(env, "OPENAI_SYSTEM_ROLE", "auto", ("auto", "system", "user")),
            openai_temperature=_optional_float(env, "OPENAI_TEMPERATURE", 0.0, 2.0),
            openai_top_p=_optional_float(env, "OPENAI_TOP_P", 0.0, 1.0),
            llm_structured_output=_choice(env, "LLM_STRUCTURED_OUTPUT", "auto", STRUCTURED_OUTPUTS),
            quota_retry_after_s=_int(env, "QUOTA_RETRY_AFTER_S", cls.quota_retry_after_s, low=1),
            offline_fail_sets=_int_list(env, "OFFLINE_FAIL_SETS"),
            offline_fail_rate=_float(env, "OFFLINE_FAIL_RATE", 0.0, high=1.0),
            offline_latency_s=_float(env, "OFFLINE_LATENCY_S", 0.0),
            offline_seed=_int(env, "OFFLINE_SEED", 0),
            offline_crash_sets=_int_list(env, "OFFLINE_CRASH_SETS"),
            retry_backoff_base=_int(env, "RETRY_BACKOFF_BASE", cls.retry_backoff_base, low=1),
            retry_backoff_max=_int(env, "RETRY_BACKOFF_MAX", cls.retry_backoff_max, low=1),
            retry_jitter=_bool(env, "RETRY_JITTER", False),
            llm_rate_limit=env.get("LLM_RATE_LIMIT") or cls.llm_rate_limit,
            llm_rate_wait_max_s=_float(env, "LLM_RATE_WAIT_MAX_S", cls.llm_rate_wait_max_s),
            job_ttl_s=_int(env, "JOB_TTL_S", cls.job_ttl_s, low=60),
            task_time_limit_s=_int(env, "TASK_TIME_LIMIT_S", cls.task_time_limit_s, low=10),
            log_format=log_format,
            log_level=(env.get("LOG_LEVEL") or "INFO").upper(),
            api_url=(env.get("MOVIE_GEN_URL")
                     or f"http://127.0.0.1:{_int(env, 'MOVIE_GEN_PORT', 8000, low=1)}").rstrip("/"),
            web_port=_int(env, "MOVIE_GEN_PORT", 8000, low=1),
            web_workers=_int(env, "WEB_WORKERS", cls.web_workers, low=1),
            worker_concurrency=_int(env, "WORKER_CONCURRENCY", cls.worker_concurrency, low=1),
            flower_port=_int(env, "FLOWER_PORT", cls.flower_port, low=1),
            flower_basic_auth=env.get("FLOWER_BASIC_AUTH") or None,
            state_dir=Path(env.get("MOVIE_GEN_HOME") or ".movie-gen").resolve(),
            api_keys=tuple(k.strip() for k in env.get("MOVIE_GEN_API_KEYS", "").split(",") if k.strip()),
            client_api_key=env.get("MOVIE_GEN_API_KEY") or None,
            api_rate_limit=env.get("API_RATE_LIMIT") or cls.api_rate_limit,
            max_request_bytes=_int(env, "MAX_REQUEST_BYTES", cls.max_request_bytes, low=1024),
            idempotency_ttl_s=_int(env, "IDEMPOTENCY_TTL_S", cls.idempotency_ttl_s, low=60),
            stall_timeout_s=_int(env, "STALL_TIMEOUT_S", 0, low=0),
            offline_fail_first_run_sets=_int_list(env, "OFFLINE_FAIL_FIRST_RUN_SETS"),
            sync_wait_s=_float(env, "SYNC_WAIT_S", 0.0, high=300.0),
            long_polls_per_key=_int(env, "LONG_POLLS_PER_KEY", cls.long_polls_per_key, low=1),
            body_timeout_s=_float(env, "BODY_TIMEOUT_S", cls.body_timeout_s, low=0.1),
            header_timeout_s=_int(env, "HEADER_TIMEOUT_S", cls.header_timeout_s, low=1),
            web_connections=_int(env, "WEB_CONNECTIONS", cls.web_connections, low=10),
            web_redis_connections=_int(env, "WEB_REDIS_CONNECTIONS", cls.web_redis_connections, low=1),
            trusted_proxies=_int(env, "TRUSTED_PROXIES", 0, low=0),
            server_secret=env.get("MOVIE_GEN_SECRET") or None,
            auth_failure_limit=env.get("AUTH_FAILURE_LIMIT") or cls.auth_failure_limit,
            allow_no_api_keys=_bool(env, "ALLOW_NO_API_KEYS", True),
            lease_ttl_s=_float(env, "LEASE_TTL_S", cls.lease_ttl_s, low=1.0),
            recovery_interval_s=_float(env, "RECOVERY_INTERVAL_S", cls.recovery_interval_s, low=0.2),
            delivery_limit=_int(env, "DELIVERY_LIMIT", cls.delivery_limit, low=1),
            broker_url=_broker_url(env),
        )

    @property
    def celery_broker_url(self) -> str:
        """Where the task messages go: BROKER_URL, else the Redis of the job store."""
        return self.broker_url or self.redis_url

    @property
    def broker_is_rabbitmq(self) -> bool:
        """True when the broker is RabbitMQ (an `amqp://` or `amqps://` BROKER_URL)."""
        return self.celery_broker_url.split("://", 1)[0] in AMQP_SCHEMES

    @property
    def visibility_timeout_s(self) -> int:
        """How long the broker holds an unacknowledged message before delivering it again."""
        return int(self.task_time_limit_s + self.retry_backoff_max + 600)

    @property
    def stall_after_s(self) -> int:
        """A running job with no change for this long has lost its messages (see STALL_TIMEOUT_S)."""
        return self.stall_timeout_s or self.visibility_timeout_s + 600

    def replace(self, **changes: Any) -> "Settings":
        """A copy with some values changed (used by tests and the app factory)."""
        return dataclasses.replace(self, **changes)


_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current
