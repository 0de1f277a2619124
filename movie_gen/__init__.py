"""movie-gen: a story idea in, a long and consistent movie script out, written set by set."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flask import Flask


def create_app(config: dict[str, Any] | None = None) -> "Flask":
    """The Flask app: settings, the OpenAPI-documented API, the Celery client for enqueueing."""
    # Imported here, not at the top: gunicorn's config (movie_gen.config.gunicorn_conf) reads the settings
    # in the master process, which must not import ssl and the rest before gevent patches them.
    from flask import Flask

    from movie_gen.config.logging_setup import configure_logging
    from movie_gen.config.settings import Settings
    from movie_gen.execution.celery_app import create_celery

    from .api import register_api
    from .services import Services, get_services

    app = Flask(__name__)
    config = dict(config or {})
    settings: Settings | None = config.pop("SETTINGS", None)
    services = Services(settings) if settings else get_services()
    app.config.update(
        API_TITLE="movie-gen", API_VERSION="1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/", OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL="/docs/assets/",
        MAX_CONTENT_LENGTH=services.settings.max_request_bytes,
    )
    app.config.update(config)
    app.json.sort_keys = False  # type: ignore[attr-defined]  (keep documented field order)
    configure_logging(services.settings.log_format, services.settings.log_level)
    app.extensions["movie_gen"] = {"services": services, "celery": create_celery(settings)}
    register_api(app, services)
    return app
