"""Per-key request rate on the POST endpoints (flask-limiter, counted in Redis): 429 + Retry-After."""

from __future__ import annotations

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from ..settings import Settings
from .auth import current_owner

LIMITED_ENDPOINTS = ("generate.GenerateMovie", "retry.RetryFailedSets", "jobs.CancelJob")


def _client_key() -> str:
    """The API key's id when keys are on, else the client's address."""
    return current_owner() or get_remote_address()


def install_request_limits(app: Flask, settings: Settings) -> Limiter:
    """Limit the POST endpoints to `API_RATE_LIMIT` per client."""

    @app.after_request  # registered first, so it runs after flask-limiter has added its headers
    def _retry_after_only_when_limited(response):
        if response.status_code != 429:
            response.headers.pop("Retry-After", None)
        return response

    limiter = Limiter(_client_key, app=app, storage_uri=settings.redis_url, headers_enabled=True,
                      strategy="moving-window", key_prefix="movie_gen_api")
    for endpoint in LIMITED_ENDPOINTS:
        app.view_functions[endpoint] = limiter.limit(settings.api_rate_limit)(app.view_functions[endpoint])
    return limiter
