"""Celery settings, read from the environment through the one settings object."""

from movie_gen.config.settings import get_settings
from movie_gen.execution.broker import broker_config

_settings = get_settings()

# The broker (REDIS_URL by default, or BROKER_URL): its URL, queues and transport options, in
# movie_gen/execution/broker.py. The results, like the job store, are in Redis whatever the broker.
globals().update(broker_config(_settings))
result_backend = _settings.redis_url
task_serializer = "json"
result_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

# A set is long work: take one message at a time, acknowledge it only when it is done, and put it
# back on the queue when the worker process dies so that another worker finishes it.
task_acks_late = True
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
# A running set goes on when the worker's broker connection drops (its lease keeps a second
# delivery from running it too); Celery 6 would cancel it by default, throwing its model call away.
worker_cancel_long_running_tasks_on_connection_loss = False
task_time_limit = _settings.task_time_limit_s
task_soft_time_limit = max(5, _settings.task_time_limit_s - 30)

result_backend_transport_options = {"visibility_timeout": _settings.visibility_timeout_s,
                                    "global_keyprefix": "movie_gen:"}
broker_connection_retry_on_startup = True
# A Redis restart must not lose a task's outcome: the result backend retries its writes.
result_backend_always_retry = True
result_backend_max_retries = 20
result_expires = _settings.job_ttl_s

# Our own queue (in broker_config), control and event exchanges, and broker key prefix: workers of
# another Celery app on the same broker never take our tasks, answer our pings or read our events
# (and we never take theirs).
control_exchange = "movie_gen"
event_exchange = "movie_gen.events"

# Flower shows queued, started, retried and finished tasks.
worker_send_task_events = True
task_send_sent_event = True
task_track_started = True
