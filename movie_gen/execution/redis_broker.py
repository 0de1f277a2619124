"""kombu's Redis transport, able to put its unacknowledged messages back after its connection closed.

When the broker connection breaks (a Redis restart), a channel that closes after its Connection
object has already been closed rebuilds its connection pool to restore its unacknowledged
messages, reading the host from `transport.client`, which is None by then: the worker dies with
"Unrecoverable error: AttributeError("'NoneType' object has no attribute 'hostname'")" raised in
`restore_unacked` / `_connparams` (the code path of celery/kombu#970; kombu 5.7 still has it).
This channel keeps the connection parameters it was opened with and uses them in that case, so
the messages are restored and the worker reconnects.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis


class Channel(kombu_redis.Channel):
    """A Redis channel that remembers the Connection it was opened for."""

    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        self._opened_for = connection.client
        super().__init__(connection, *args, **kwargs)

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport.client is not None or self._opened_for is None:
            return super()._connparams(asynchronous=asynchronous)
        transport.client = self._opened_for  # only for the time of reading the parameters
        try:
            return super()._connparams(asynchronous=asynchronous)
        finally:
            transport.client = None


class Transport(kombu_redis.Transport):
    """`broker_transport = "movie_gen.execution.redis_broker:Transport"` for `redis://` broker URLs."""

    Channel = Channel
