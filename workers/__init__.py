"""The Celery worker entry point: `celery -A workers worker` (and `celery -A workers flower`)."""

from movie_gen.execution.celery_app import create_celery

app = create_celery()
celery = app

from . import tasks  # noqa: E402,F401  (registers the tasks on `app`)
