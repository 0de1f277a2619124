"""The HTTP API: one blueprint per resource, registered from here."""

from __future__ import annotations

from flask import Flask

from .errors import MovieGenApi, register_error_handlers


def register_api(app: Flask) -> MovieGenApi:
    """Attach flask-smorest, the error handling and every blueprint to `app`."""
    from .generate.resources import blp as generate_blp
    from .health.resources import blp as health_blp
    from .jobs.resources import blp as jobs_blp
    from .retry.resources import blp as retry_blp

    api = MovieGenApi(app)
    register_error_handlers(app)
    for blp in (generate_blp, jobs_blp, retry_blp, health_blp):
        api.register_blueprint(blp)
    return api
