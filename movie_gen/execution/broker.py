"""The broker of the task messages: Redis (the default) or RabbitMQ with a quorum queue.

With RabbitMQ (`BROKER_URL=amqp://…`) the project's queue `movie_gen` is a quorum queue on a topic
exchange: the broker gives an unacknowledged message back the moment its consumer's connection
closes, counts its deliveries, and after `DELIVERY_LIMIT` lost deliveries moves it to the
dead-letter queue `movie_gen.dead`, which the workers also consume (movie_gen.execution.dead_letters fails
the unit there, without running it). Countdowns use Celery's native delayed delivery (a chain of
TTL queues in the broker) instead of waiting unacknowledged in a worker. The job store and the
results stay in Redis (`REDIS_URL`) whatever the broker.
"""

from __future__ import annotations

from typing import Any

from kombu import Exchange, Queue

from movie_gen.config.settings import Settings

QUEUE = "movie_gen"
DEAD_LETTER_QUEUE = "movie_gen.dead"
ROUTING_KEY = "movie_gen.task"


def broker_config(settings: Settings) -> dict[str, Any]:
    """The Celery settings that depend on the broker (the rest are in `celeryconfig`)."""
    common = {"broker_url": settings.celery_broker_url, "task_default_queue": QUEUE}
    if not settings.broker_is_rabbitmq:
        # Celery's defaults for the queue; unacknowledged messages (running tasks, retries waiting
        # for their countdown) come back after the visibility timeout: keep it above the task time
        # limit plus the longest wait.
        # kombu's Redis transport with a channel that can restore its messages after its
        # connection closed (a Redis restart would otherwise end the worker: redis_broker.py).
        transport = "movie_gen.execution.redis_broker:Transport" if common["broker_url"].startswith("redis://") \
            else None
        return {**common, "broker_transport": transport,
                "task_queues": None, "task_default_queue_type": "classic",
                "task_default_exchange": None, "task_default_exchange_type": "direct",
                "task_default_routing_key": None,
                "broker_transport_options": {"visibility_timeout": settings.visibility_timeout_s,
                                             "global_keyprefix": "movie_gen:"}}
    return {
        **common,
        "task_queues": (task_queue(settings), dead_letter_queue()),
        "task_default_queue_type": "quorum",
        "task_default_exchange": QUEUE,
        "task_default_exchange_type": "topic",  # native delayed delivery needs topic, not direct
        "task_default_routing_key": ROUTING_KEY,
        "worker_detect_quorum_queues": True,  # per-consumer QoS, countdowns delayed in the broker
        "broker_transport": None,
        "broker_transport_options": {"confirm_publish": True},  # a sent task is in the broker
    }


def task_queue(settings: Settings) -> Queue:
    """The quorum queue of every task; a message lost with its worker DELIVERY_LIMIT times is
    dead-lettered (RabbitMQ 3.x drops or dead-letters a message returned more than
    `x-delivery-limit` times, so the limit is one less than the deliveries allowed)."""
    return Queue(QUEUE, Exchange(QUEUE, type="topic"), routing_key="movie_gen.#", queue_arguments={
        "x-queue-type": "quorum",
        "x-delivery-limit": settings.delivery_limit - 1,
        "x-dead-letter-exchange": DEAD_LETTER_QUEUE,
        # one routing key for every dead message: a retried one carries a delayed-delivery prefix
        "x-dead-letter-routing-key": DEAD_LETTER_QUEUE,
    })


def dead_letter_queue() -> Queue:
    """Where RabbitMQ puts a message past its delivery limit; workers consume it to fail the unit."""
    return Queue(DEAD_LETTER_QUEUE, Exchange(DEAD_LETTER_QUEUE, type="topic"),
                 routing_key=DEAD_LETTER_QUEUE, queue_arguments={"x-queue-type": "quorum"})
