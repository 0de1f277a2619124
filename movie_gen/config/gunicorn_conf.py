"""gunicorn's settings for the web app (`gunicorn -c python:movie_gen.config.gunicorn_conf ...`).

gevent workers: a long-poll or a slow client holds a greenlet, not a thread, so thousands wait at
once per process; redis-py and the Celery client run cooperatively under gevent's monkey-patching.
"""

from movie_gen.config import gunicorn_errors
from movie_gen.config.settings import get_settings

_settings = get_settings()
gunicorn_errors.install()  # a request gunicorn refuses itself gets a JSON body, as the app's do

worker_class = "gevent"
workers = _settings.web_workers
worker_connections = _settings.web_connections  # open connections (and so long-polls) per process
keepalive = _settings.header_timeout_s  # the gevent worker waits this long for a request's headers
timeout = 60  # heartbeat of a worker process; long-polls do not block it under gevent
graceful_timeout = 30
limit_request_line = 8190  # gunicorn's largest: a long job id reaches the app, which names it


def post_worker_init(worker) -> None:
    """On SIGTERM, end the worker's event streams at once instead of waiting graceful_timeout."""
    import signal

    import gevent

    # Imported once the worker runs: this module loads before gevent has patched anything.
    from movie_gen.api.event_hub import close_all_streams

    previous = signal.getsignal(signal.SIGTERM)

    def stop(signum, frame):
        gevent.spawn(close_all_streams)  # not inside the signal handler
        if callable(previous):
            previous(signum, frame)

    signal.signal(signal.SIGTERM, stop)
