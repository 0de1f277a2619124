"""The one settings object: every environment variable the service reads, typed, with defaults.

Each attribute of `Settings` is read from the variable of its name in capitals (or the field's
`data_key`) by the marshmallow field in its metadata, a plain string when it has none.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate


class SettingsError(ValueError):
    """An environment variable holds a value that cannot be used."""


class _Bounds(validate.Range):
    """A number's bounds, with the error messages of the settings."""

    message_min = "must be >= {{min}}, got {{input}}"
    message_all = "must be between {{min}} and {{max}}, got {{input}}"


def _int(low: int | None = None, **kwargs: Any) -> fields.Integer:
    """An integer, at least `low`."""
    return fields.Integer(validate=_Bounds(low), **kwargs,
                          error_messages={"invalid": "must be an integer, got {input!r}"})


def _float(low: float = 0.0, high: float | None = None) -> fields.Float:
    """A finite number from `low` to `high`."""
    return fields.Float(validate=_Bounds(low, high), error_messages={
        "invalid": "must be a number, got {input!r}", "special": "must be a finite number"})


def _bool() -> fields.Boolean:
    """true/false, yes/no, on/off or 1/0."""
    return fields.Boolean(error_messages={"invalid": "must be true or false, got {input!r}"})


def _one_of(*choices: str, error: str = "must be one of {choices}, got {input!r}") -> fields.Function:
    """One of `choices`, in any case."""
    return fields.Function(deserialize=str.lower, validate=validate.OneOf(choices, error=error))


def _set_numbers(text: str) -> frozenset[int]:
    """The set numbers of a comma-separated list ("2, 5")."""
    try:
        return frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValidationError(f"must be comma-separated set numbers, got {text!r}") from None


def _words(text: str) -> tuple[str, ...]:
    """The non-empty items of a comma-separated list."""
    return tuple(word.strip() for word in text.split(",") if word.strip())


AMQP_SCHEMES = ("amqp", "amqps", "pyamqp")
BROKER_SCHEMES = (*AMQP_SCHEMES, "redis", "rediss", "redis+socket")


def _broker_scheme(url: str) -> None:
    """Refuse a broker of another kind, naming its scheme only: the URL may hold a password."""
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in BROKER_SCHEMES:
        raise ValidationError(f"must start with one of {', '.join(s + '://' for s in BROKER_SCHEMES)}, "
                              f"got {scheme or 'no scheme'!r}")


def _output_url(url: str) -> None:
    """`s3://bucket/prefix`, or a local directory as a path or `file://` URL (its scheme only is
    echoed)."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("", "file") and not (scheme == "s3" and url[5:].strip("/")):
        raise ValidationError(f"must be s3://bucket/prefix, a file:// URL or a path, got {scheme + '://…'!r}")


def _env(default: Any, reader: fields.Field, **kwargs: Any) -> Any:
    """A setting: its default and the marshmallow field that reads its variable."""
    return field(default=default, metadata={"env": reader}, **kwargs)


@dataclass(frozen=True)
class Settings:
    """Configuration of the web app, the workers and the CLI."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    output_root: Path = _env(Path("output"), fields.Function(deserialize=Path))
    # s3://bucket/prefix: scripts go to object storage ('' after from_env for a local directory)
    output_url: str = _env("", fields.String(validate=_output_url))
    # unset: "openai" when OPENAI_API_KEY is set (see from_env)
    llm_provider: str = _env("offline", _one_of("openai", "offline",
                                                error="must be 'openai' or 'offline', got {input!r}"))
    openai_api_key: str | None = field(default=None, repr=False)
    openai_base_url: str | None = None
    openai_model: str = "gpt-4o-mini"
    openai_timeout_s: float = _env(120.0, _float(low=0.1))
    openai_max_tokens: int = _env(16000, _int(256))
    openai_context_tokens: int = _env(0, _int(0))
    openai_token_param: str = _env("auto", _one_of("auto", "both", "max_completion_tokens", "max_tokens"))
    openai_system_role: str = _env("auto", _one_of("auto", "system", "user"))
    openai_temperature: float | None = _env(None, _float(0.0, 2.0))
    openai_top_p: float | None = _env(None, _float(0.0, 1.0))
    llm_structured_output: str = _env("auto", _one_of("auto", "json_schema", "json_object", "prompt"))
    quota_retry_after_s: int = _env(3600, _int(1))
    offline_fail_sets: frozenset[int] = _env(frozenset(), fields.Function(deserialize=_set_numbers))
    offline_fail_rate: float = _env(0.0, _float(high=1.0))
    offline_latency_s: float = _env(0.0, _float())
    offline_seed: int = _env(0, _int())
    offline_crash_sets: frozenset[int] = _env(frozenset(), fields.Function(deserialize=_set_numbers))
    retry_backoff_base: int = _env(2, _int(1))
    retry_backoff_max: int = _env(3600, _int(1))
    retry_jitter: bool = _env(False, _bool())
    llm_rate_limit: str = "30/minute"
    llm_rate_wait_max_s: float = _env(30.0, _float())
    job_ttl_s: int = _env(7 * 24 * 3600, _int(60))
    task_time_limit_s: int = _env(600, _int(10))
    log_format: str = _env("text", _one_of("text", "json", error="must be 'text' or 'json', got {input!r}"))
    log_level: str = _env("INFO", fields.Function(deserialize=str.upper))
    # unset: http://127.0.0.1:<MOVIE_GEN_PORT> (see from_env)
    api_url: str = _env("http://127.0.0.1:8000", fields.String(data_key="MOVIE_GEN_URL"))
    web_port: int = _env(8000, _int(1, data_key="MOVIE_GEN_PORT"))
    web_workers: int = _env(2, _int(1))
    worker_concurrency: int = _env(2, _int(1))
    flower_port: int = _env(5555, _int(1))
    flower_basic_auth: str | None = field(default=None, repr=False)
    state_dir: Path = _env(Path(".movie-gen"), fields.Function(deserialize=Path, data_key="MOVIE_GEN_HOME"))
    api_keys: tuple[str, ...] = _env((), fields.Function(deserialize=_words, data_key="MOVIE_GEN_API_KEYS"),
                                     repr=False)
    client_api_key: str | None = _env(None, fields.String(data_key="MOVIE_GEN_API_KEY"), repr=False)
    api_rate_limit: str = "60/minute"
    max_request_bytes: int = _env(1024 * 1024, _int(1024))
    idempotency_ttl_s: int = _env(24 * 3600, _int(60))
    stall_timeout_s: int = _env(0, _int(0))
    offline_fail_first_run_sets: frozenset[int] = _env(frozenset(), fields.Function(deserialize=_set_numbers))
    sync_wait_s: float = _env(0.0, _float(high=300.0))
    long_polls_per_key: int = _env(50, _int(1))
    body_timeout_s: float = _env(10.0, _float(low=0.1))
    header_timeout_s: int = _env(10, _int(1))
    web_connections: int = _env(1000, _int(10))
    web_redis_connections: int = _env(3, _int(1))
    trusted_proxies: int = _env(0, _int(0))
    server_secret: str | None = _env(None, fields.String(data_key="MOVIE_GEN_SECRET"), repr=False)
    auth_failure_limit: str = "10/minute"
    allow_no_api_keys: bool = _env(True, _bool())
    lease_ttl_s: float = _env(60.0, _float(low=1.0))
    recovery_interval_s: float = _env(10.0, _float(low=0.2))
    delivery_limit: int = _env(3, _int(1))
    # empty: the broker is REDIS_URL
    broker_url: str = _env("", fields.String(validate=_broker_scheme), repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from the environment (or the mapping given); a blank variable is unset."""
        env = os.environ if env is None else env
        try:
            values = _VARIABLES.load({name: value.strip() for name, value in env.items() if value.strip()})
        except ValidationError as error:
            raise SettingsError("; ".join(f"{name} {' '.join(problems)}"
                                          for name, problems in error.messages.items())) from None
        settings = cls(**values)
        local = settings.output_url and not settings.output_url.lower().startswith("s3://")
        if local:  # OUTPUT_URL names a local directory: it is the root of the files
            directory = Path(settings.output_url.removeprefix("file://"))
            settings = settings.replace(output_url="", output_root=directory)
        return settings.replace(
            llm_provider=values.get("llm_provider", "openai" if settings.openai_api_key else "offline"),
            api_url=values.get("api_url", f"http://127.0.0.1:{settings.web_port}").rstrip("/"),
            output_root=settings.output_root.resolve(), state_dir=settings.state_dir.resolve())

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

    def replace(self, **changes: Any) -> Settings:
        """A copy with some values changed (used by tests and the app factory)."""
        return dataclasses.replace(self, **changes)


class _Variables(Schema):
    """The environment variables of `Settings`; other variables are ignored."""

    class Meta:
        unknown = EXCLUDE

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        """Read each attribute from the field's data_key, else from its name in capitals."""
        field_obj.data_key = field_obj.data_key or field_name.upper()


_VARIABLES = _Variables.from_dict({f.name: f.metadata.get("env") or fields.String()
                                   for f in dataclasses.fields(Settings)})()

_current: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    global _current
    if _current is None:
        _current = Settings.from_env()
    return _current
