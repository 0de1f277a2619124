"""Leases on running units: one live attempt per unit, held by one worker, renewed by a heartbeat.

A lease is redis-py's `Lock` (an owner token set with SET NX PX, extended and released by Lua
only by its owner). While an attempt runs, a heartbeat thread extends it; if the worker dies, the
lease lapses within its time to live and the recovery check sends the unit again. The job store
writes a unit's record only with the current lease token, so an attempt that lost its lease
(a second delivery, a partitioned worker) can no longer change anything.

The time to live (LEASE_TTL_S, 60 s) outlives the job store's patience (about 30 s of retried
commands), so a live attempt keeps its unit through a Redis pause or restart; if the lease lapsed
anyway (Redis was away longer, or its clock jumped), the heartbeat takes it again with the same
token as long as nobody else did. A watched unit is one that runs: the lease adds it to the
watch set and renews it; releasing the lease removes it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

import redis
from redis.exceptions import LockError

from movie_gen.store.job_model import unit_name

log = logging.getLogger(__name__)
WATCH = "movie_gen:watch"
_DROP_IF = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def holder_is_dead(token: str) -> bool:
    """Whether a lease's holder was a process of this machine that has died (its pid is gone)."""
    host, _, rest = token.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's process: only its lease's lapse tells
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def lease_key(job_id: str, set_number: int | None) -> str:
    return f"movie_gen:job:{job_id}:lease:{unit_name(set_number)}"


def watch_member(job_id: str, set_number: int | None) -> str:
    return f"{job_id}:{unit_name(set_number)}"


def watch(client: redis.Redis, job_id: str, set_number: int | None, seconds: float) -> None:
    """Check the unit again after `seconds` unless it ends first (see `recovery`)."""
    client.zadd(WATCH, {watch_member(job_id, set_number): time.time() + seconds})


def unwatch(client: redis.Redis, job_id: str, set_number: int | None) -> None:
    client.zrem(WATCH, watch_member(job_id, set_number))


class UnitLease:
    """The lease of one unit for one attempt, with its heartbeat."""

    def __init__(self, client: redis.Redis, job_id: str, set_number: int | None, ttl_s: float,
                 task_id: str = "") -> None:
        self.client, self.job_id, self.set_number, self.ttl_s = client, job_id, set_number, ttl_s
        self.key = lease_key(job_id, set_number)
        self.token = f"{socket.gethostname()}:{os.getpid()}:{task_id}:{uuid.uuid4().hex[:12]}"
        self.lock = client.lock(self.key, timeout=ttl_s, blocking=False, thread_local=False)
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> bool:
        """Take the lease if no live attempt holds it; start the heartbeat.

        A lease whose holder was a process of this machine that no longer exists (a pool process
        killed mid-attempt) is taken over at once instead of waiting for it to lapse.
        """
        if not self.lock.acquire(token=self.token):
            holder = self.holder()
            if not (holder and holder_is_dead(holder) and self._drop(holder)
                    and self.lock.acquire(token=self.token)):
                return False
        watch(self.client, self.job_id, self.set_number, self.ttl_s / 2)
        self._thread = threading.Thread(target=self._beat, name=f"lease {self.key}", daemon=True)
        self._thread.start()
        return True

    def _drop(self, token: str) -> bool:
        return bool(self.client.eval(_DROP_IF, 1, self.key, token))

    def holder(self) -> str | None:
        """Who holds the lease now (the worker identity in its token), if anyone."""
        return self.client.get(self.key)

    @staticmethod
    def holder_task(token: str) -> str | None:
        """The task id in a lease's token (None when the token has none)."""
        parts = token.split(":")
        return parts[2] or None if len(parts) == 4 else None

    def held(self) -> bool:
        """Whether this attempt still holds the lease (checked before a file is replaced)."""
        return not self.lost.is_set() and self.holder() == self.token

    def _beat(self) -> None:
        where = {"job_id": self.job_id, "set_number": self.set_number}
        while not self._stop.wait(self.ttl_s / 3):
            try:
                try:
                    self.lock.extend(self.ttl_s, replace_ttl=True)
                except LockError:  # it lapsed: ours again unless another delivery took it
                    if not self.client.set(self.key, self.token, nx=True, px=int(self.ttl_s * 1000)):
                        log.warning("lease lost: another delivery took over this unit", extra=where)
                        self.lost.set()
                        return
                    log.warning("lease lapsed while the job store was away; taken again", extra=where)
                watch(self.client, self.job_id, self.set_number, self.ttl_s / 2)
            except redis.RedisError as exc:  # the store is unreachable: renewed once it is back
                log.warning("cannot renew the lease: %s", exc, extra=where)

    def release(self) -> None:
        """End the heartbeat and give the lease back (only if still ours)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.lock.release()
        except LockError:
            return  # it lapsed or was taken over: nothing of ours to release
        unwatch(self.client, self.job_id, self.set_number)
