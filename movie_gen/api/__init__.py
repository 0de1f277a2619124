"""The HTTP API: one blueprint per resource, registered from here."""

from __future__ import annotations

from flask import Flask

from ..settings import Settings
from .auth import install_auth
from .docs_assets import install_docs_assets
from .errors import MovieGenApi, register_error_handlers
from .request_limits import install_request_limits


def register_api(app: Flask, settings: Settings) -> MovieGenApi:
    """Attach flask-smorest, API keys, limits, error handling and every blueprint to `app`."""
    from .generate.resources import blp as generate_blp
    from .health.resources import blp as health_blp
    from .jobs.resources import blp as jobs_blp
    from .retry.resources import blp as retry_blp

    install_auth(app)
    spec: dict = {"components": {"securitySchemes": {"bearerAuth": {
        "type": "http", "scheme": "bearer", "description": "Required when MOVIE_GEN_API_KEYS is set"}}}}
    if settings.api_keys:
        spec["security"] = [{"bearerAuth": []}]
    api = MovieGenApi(app, spec_kwargs=spec)
    register_error_handlers(app)
    for blp in (generate_blp, jobs_blp, retry_blp, health_blp):
        api.register_blueprint(blp)
    install_request_limits(app, settings)
    install_docs_assets(app)
    return api
