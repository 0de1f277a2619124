"""The Celery application, configured from `celeryconfig`; shared by the workers and the web app."""

from __future__ import annotations

from celery import Celery

from .broker import broker_config
from .settings import Settings


def create_celery(settings: Settings | None = None) -> Celery:
    """A Celery app named `movie_gen`, configured from the flat `celeryconfig` module.

    `settings` points the app at another broker and Redis than the environment's (an app built
    for tests).
    """
    app = Celery("movie_gen")
    app.config_from_object("celeryconfig")
    if settings is not None:
        app.conf.update(broker_config(settings), result_backend=settings.redis_url)
    return app
