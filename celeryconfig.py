"""Celery settings, read from the environment through the one settings object."""

from movie_gen.settings import get_settings

_settings = get_settings()

broker_url = _settings.redis_url
# kombu's Redis transport with a channel that can restore its messages after its connection
# closed (a Redis restart would otherwise end the worker; see movie_gen/redis_broker.py).
if broker_url.startswith("redis://"):
    broker_transport = "movie_gen.redis_broker:Transport"
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
task_time_limit = _settings.task_time_limit_s
task_soft_time_limit = max(5, _settings.task_time_limit_s - 30)

# Unacknowledged messages (running tasks, retries waiting for their countdown) come back after the
# visibility timeout: keep it above the task time limit plus the longest retry wait.
_visibility = _settings.visibility_timeout_s
broker_transport_options = {"visibility_timeout": _visibility, "global_keyprefix": "movie_gen:"}
result_backend_transport_options = {"visibility_timeout": _visibility, "global_keyprefix": "movie_gen:"}
broker_connection_retry_on_startup = True
# A Redis restart must not lose a task's outcome: the result backend retries its writes.
result_backend_always_retry = True
result_backend_max_retries = 20
result_expires = _settings.job_ttl_s

# Our own queue, control and event exchanges, and broker key prefix: workers of another Celery app on
# the same Redis never take our tasks, answer our pings or read our events (and we never take theirs).
task_default_queue = "movie_gen"
control_exchange = "movie_gen"
event_exchange = "movie_gen.events"

# Flower shows queued, started, retried and finished tasks.
worker_send_task_events = True
task_send_sent_event = True
task_track_started = True
