"""Per-key request rate on the POST endpoints (flask-limiter, counted in Redis): 429 + Retry-After."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_limiter import Limiter

from movie_gen.config.settings import Settings

from .auth import client_key

LIMITED_ENDPOINTS = ("generate.GenerateMovie", "retry.RetryFailedSets", "jobs.CancelJob")


def install_request_limits(app: Flask, settings: Settings, connection_pool: Any = None) -> Limiter:
    """Limit the POST endpoints to `API_RATE_LIMIT` per client (counted on `connection_pool`)."""

    @app.after_request  # registered first, so it runs after flask-limiter has added its headers
    def _retry_after_only_when_limited(response):
        if response.status_code != 429:
            response.headers.pop("Retry-After", None)
        return response

    options = {"connection_pool": connection_pool} if connection_pool is not None else {}
    limiter = Limiter(client_key, app=app, storage_uri=settings.redis_url, headers_enabled=True,
                      strategy="moving-window", key_prefix="movie_gen_api", storage_options=options)
    for endpoint in LIMITED_ENDPOINTS:
        app.view_functions[endpoint] = limiter.limit(settings.api_rate_limit)(app.view_functions[endpoint])
    return limiter
