"""One Redis subscription per web process: it wakes every long-poll and feeds every event stream.

The job store publishes on `movie_gen:job:<id>:changed` (the job's new version) after every
write, and on `…:final` when the job ends. One listener thread (a greenlet under gunicorn's gevent
workers) holds a single pattern subscription to both, reads a followed job once per burst of
changes, and hands what changed to every stream of that job in this process.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from contextlib import contextmanager
from typing import Iterator

import redis

from movie_gen.store.job_store import JobStore

from .job_feed import JobFeed

log = logging.getLogger(__name__)
PATTERN = "movie_gen:job:*"
_PREFIX = len("movie_gen:job:")
_HUBS: "weakref.WeakSet[EventHub]" = weakref.WeakSet()


def close_all_streams() -> None:
    """End every event stream of this process now (a graceful stop: clients reconnect elsewhere)."""
    for hub in list(_HUBS):
        hub.close_streams()


class EventHub:
    """The process's subscription, the jobs followed by its streams and the waits on jobs."""

    def __init__(self, store: JobStore, redis_url: str) -> None:
        self.store = store
        self.redis_url = redis_url
        self._lock = threading.Lock()
        self._feeds: dict[str, JobFeed] = {}
        self._finals: dict[str, set[threading.Event]] = {}
        self._pid: int | None = None
        self._ready = threading.Event()
        self.closing = False
        _HUBS.add(self)

    # --- for requests ------------------------------------------------------------------------

    @contextmanager
    def final_waiter(self, job_id: str) -> Iterator[threading.Event]:
        """An event set when the job is announced final (or when the subscription was lost)."""
        self._start()
        woken = threading.Event()
        with self._lock:
            self._finals.setdefault(job_id, set()).add(woken)
        try:
            yield woken
        finally:
            with self._lock:
                waiters = self._finals.get(job_id, set())
                waiters.discard(woken)
                if not waiters:
                    self._finals.pop(job_id, None)

    @contextmanager
    def follow(self, job_id: str) -> Iterator[JobFeed]:
        """The job's feed while a stream follows it (loaded on first use, shared by every stream)."""
        self._start()
        with self._lock:
            feed = self._feeds.get(job_id)
            if feed is None:
                feed = self._feeds[job_id] = JobFeed(job_id)
            feed.followers += 1
        try:
            with feed.loading:
                if not feed.loaded:
                    feed.refresh(self.store)
            yield feed
        finally:
            with self._lock:
                feed.followers -= 1
                if feed.followers == 0 and self._feeds.get(job_id) is feed:
                    del self._feeds[job_id]

    def close_streams(self) -> None:
        self.closing = True
        with self._lock:
            feeds = list(self._feeds.values())
        for feed in feeds:
            with feed.changed:
                feed.changed.notify_all()

    def subscribers(self) -> int:
        """Streams and waits held in this process (for tests and the bench)."""
        with self._lock:
            return sum(f.followers for f in self._feeds.values()) + sum(map(len, self._finals.values()))

    # --- the listener ------------------------------------------------------------------------

    def _start(self) -> None:
        """Start the listener once per process (after a fork, again in the child)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._ready.clear()
            threading.Thread(target=self._listen, name="movie-gen-event-hub", daemon=True).start()
        self._ready.wait(5)  # not ready yet: waits still end on their timeout, streams on keep-alive

    def _listen(self) -> None:
        client = redis.Redis.from_url(self.redis_url, decode_responses=True, socket_connect_timeout=5,
                                      socket_keepalive=True, health_check_interval=30)
        backoff = 0.5
        while True:
            pubsub = client.pubsub()
            try:
                pubsub.psubscribe(PATTERN)
                confirmed = pubsub.get_message(timeout=5)  # the subscription is active from here on
                if not confirmed or confirmed["type"] != "psubscribe":
                    raise redis.TimeoutError("no answer to PSUBSCRIBE")
                self._ready.set()
                self._wake_all()  # anything published while we were not subscribed is read again
                backoff = 0.5
                while True:
                    self._dispatch(pubsub)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                level = logging.WARNING if backoff == 0.5 else logging.DEBUG  # once per outage
                log.log(level, "event subscription lost (%s); reconnecting", exc)
            except Exception:  # never let the process's only listener die
                log.exception("event hub error; reconnecting")
            finally:
                pubsub.close()
            time.sleep(backoff)
            backoff = min(5.0, backoff * 2)

    def _dispatch(self, pubsub) -> None:
        """Wait for messages, take every one already there, then update each changed job once."""
        message = pubsub.get_message(timeout=5)
        changed: set[str] = set()
        while message is not None:
            if message["type"] != "pmessage":
                message = pubsub.get_message(timeout=0)
                continue
            job_id, _, kind = message["channel"][_PREFIX:].rpartition(":")
            if kind == "final":
                self._wake_finals(job_id)
            changed.add(job_id)
            message = pubsub.get_message(timeout=0)
        for job_id in changed:
            with self._lock:
                feed = self._feeds.get(job_id)
            if feed is not None:
                self._refresh(feed)

    def _refresh(self, feed: JobFeed) -> None:
        try:
            with feed.loading:
                feed.refresh(self.store)
        except redis.RedisError as exc:
            log.warning("could not read a followed job: %s", exc, extra={"job_id": feed.job_id})

    def _wake_finals(self, job_id: str) -> None:
        with self._lock:
            waiters = list(self._finals.get(job_id, ()))
        for woken in waiters:
            woken.set()

    def _wake_all(self) -> None:
        with self._lock:
            waiters = [w for ws in self._finals.values() for w in ws]
            feeds = list(self._feeds.values())
        for woken in waiters:
            woken.set()
        for feed in feeds:
            self._refresh(feed)
