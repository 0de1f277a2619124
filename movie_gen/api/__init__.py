"""The HTTP API: one blueprint per resource, registered from here."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from movie_gen.config.settings import SettingsError

from ..services import Services
from .auth import install_auth
from .docs_assets import install_docs_assets
from .errors import MovieGenApi, register_error_handlers
from .event_hub import EventHub
from .page.views import blp as page_blp
from .request_limits import install_request_limits


def register_api(app: Flask, services: Services) -> MovieGenApi:
    """Attach flask-smorest, API keys, limits, error handling and every blueprint to `app`."""
    settings = services.settings
    if not settings.api_keys and not settings.allow_no_api_keys:
        raise SettingsError("MOVIE_GEN_API_KEYS is empty and ALLOW_NO_API_KEYS=false: refusing to "
                            "serve an open API; set keys, or ALLOW_NO_API_KEYS=true to run without them")
    if settings.trusted_proxies:  # X-Forwarded-For/-Proto count only when set by our own proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,  # type: ignore[method-assign]
                                x_proto=settings.trusted_proxies)
    from .generate.resources import blp as generate_blp
    from .health.resources import blp as health_blp
    from .jobs import events as _events  # noqa: F401  (adds GET /jobs/<id>/events to the blueprint)
    from .jobs import files as _files  # noqa: F401  (adds GET /jobs/<id>/files/<name> to the blueprint)
    from .jobs.resources import blp as jobs_blp
    from .retry.resources import blp as retry_blp

    app.extensions["movie_gen"]["events"] = EventHub(services.store, settings.redis_url)
    install_auth(app, services)
    spec: dict = {"components": {"securitySchemes": {"bearerAuth": {
        "type": "http", "scheme": "bearer", "description": "Required when MOVIE_GEN_API_KEYS is set"}}}}
    if settings.api_keys:
        spec["security"] = [{"bearerAuth": []}]
    api = MovieGenApi(app, spec_kwargs=spec)
    register_error_handlers(app)
    for blp in (generate_blp, jobs_blp, retry_blp, health_blp):
        api.register_blueprint(blp)
    install_request_limits(app, settings, services.store.redis.connection_pool)
    install_docs_assets(app)
    app.register_blueprint(page_blp)
    return api
