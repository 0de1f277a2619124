"""The Celery application, configured from `celeryconfig`; shared by the workers and the web app."""

from __future__ import annotations

from celery import Celery


def create_celery() -> Celery:
    """A Celery app named `movie_gen`, configured from the flat `celeryconfig` module."""
    app = Celery("movie_gen")
    app.config_from_object("celeryconfig")
    return app
