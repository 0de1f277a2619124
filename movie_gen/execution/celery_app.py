"""The Celery application, configured from `celeryconfig`; shared by the workers and the web app."""

from __future__ import annotations

import math
from typing import Any

from celery import Celery

from movie_gen.config.settings import Settings
from movie_gen.execution.broker import broker_config


class MovieGenCelery(Celery):
    """Celery, with countdowns in whole seconds on a quorum queue.

    Native delayed delivery (Celery 5.5-5.7) routes a countdown by `int(countdown)` seconds: a
    countdown under one second raises ValueError("countdown must be a positive number") and 1.5 s
    becomes 1 s. On RabbitMQ a countdown is rounded up, so a wait is never shorter than asked.
    """

    def send_task(self, name: str, args: Any = None, kwargs: Any = None, countdown: float | None = None,
                  *rest: Any, **options: Any) -> Any:
        if countdown and countdown > 0 and self.conf.task_default_queue_type == "quorum":
            countdown = math.ceil(countdown)
        return super().send_task(name, args, kwargs, countdown, *rest, **options)


def create_celery(settings: Settings | None = None) -> Celery:
    """A Celery app named `movie_gen`, configured from the flat `celeryconfig` module.

    `settings` points the app at another broker and Redis than the environment's (an app built
    for tests).
    """
    app = MovieGenCelery("movie_gen")
    app.config_from_object("celeryconfig")
    if settings is not None:
        app.conf.update(broker_config(settings), result_backend=settings.redis_url)
    return app
