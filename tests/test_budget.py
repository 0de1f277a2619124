"""Paid model calls never exceed the budget: copies of messages, Redis pauses and restarts, cancels.

The model server's own request journal (llmock's) counts the calls a job really paid for, from
outside the service. Each test is bounded in time; the outages are the scenario being tested.
"""

from __future__ import annotations

import json
import os
import signal
import threading

import pytest
import redis

from movie_gen.store.job_store import JobStore

from .conftest import Stack, openai_env
from .servers import RedisServer, wait_until
from .test_openai_provider import BIBLE

SIX_SET_BIBLE = {**BIBLE, "set_synopses": [{"summary": f"the descent, part {n}", "ends_with": f"end {n}"}
                                           for n in range(1, 7)]}


@pytest.fixture(autouse=True)
def fresh_llmock(llmock):
    llmock.reset()
    yield


def _outcomes(entry: dict) -> list[str]:
    return [a["outcome"] for a in entry["attempt_history"]]


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_slow_failing_sets_on_busy_workers_pay_exactly_their_budget(request, llmock, broker):
    # Two worker processes of one slot each, 2 s calls that always fail validation, and short
    # lease and recovery settings: retries wait in the queue behind other sets, and none of them
    # may be taken for lost and sent again.
    llmock.script({"type": "reply", "text": json.dumps(SIX_SET_BIBLE)},
                  {"type": "reply", "text": "not json at all", "times": None},
                  {"type": "delay", "seconds": 2, "times": None})
    make = request.getfixturevalue("make_stack" if broker == "redis" else "make_rabbitmq_stack")
    stack = make(workers=2, concurrency=1, **openai_env(llmock, LEASE_TTL_S="3", RECOVERY_INTERVAL_S="1"))
    job_id = stack.generate(idea="A song from the trench", total_segments=6, segments_per_set=1,
                            max_retries=2)
    job = stack.wait_job(job_id, timeout=150)
    assert job["state"] == "failed", job["result"]
    assert len(llmock.chat_requests()) == 1 + 6 * (2 + 1)  # the bible, then 3 attempts a set
    for entry in job["result"]["sets"]:
        assert entry["status"] == "failed" and "after 3 attempts" in entry["error"], entry
        assert _outcomes(entry) == ["error"] * 3
    assert "unit lost with its worker" not in stack.logs()


def _bible_running(stack: Stack, job_id: str) -> bool:
    job = stack.store.get(job_id)
    return bool(job) and job["bible_record"]["status"] == "running"


def _outage_stack(tmp_path, llmock, appendonly: bool) -> tuple[RedisServer, Stack]:
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis", appendonly=appendonly)
    (tmp_path / "stack").mkdir()
    # the default lease (LEASE_TTL_S) and a recovery check every second: a lapsed lease would be
    # taken for a dead worker at once
    env = openai_env(llmock, OPENAI_TIMEOUT_S="90", RECOVERY_INTERVAL_S="1")
    return server, Stack(server, tmp_path / "stack", env, workers=1, concurrency=2)


def _one_call_per_unit(stack: Stack, llmock, job_id: str) -> None:
    job = stack.wait_job(job_id, timeout=150)
    assert job["state"] == "completed", job["result"]
    assert len(llmock.chat_requests()) == 2  # the bible and the one set, each paid once
    assert _outcomes(job["result"]["story_bible"]) == ["success"]
    assert _outcomes(job["result"]["sets"][0]) == ["success"]
    assert "worker_lost" not in json.dumps(job["result"])


@pytest.mark.timeout(300)
def test_a_redis_pause_longer_than_a_lease_renewal_pays_the_call_once(tmp_path, llmock):
    llmock.script({"type": "delay", "seconds": 32, "times": 1})  # the bible's call takes 32 s
    server, stack = _outage_stack(tmp_path, llmock, appendonly=False)
    try:
        job_id = stack.generate(idea="The pause", total_segments=1, segments_per_set=1)
        wait_until(lambda: _bible_running(stack, job_id), 30, "the bible's attempt")
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            threading.Event().wait(25)  # the outage itself: Redis answers nothing for 25 s
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        _one_call_per_unit(stack, llmock, job_id)
    finally:
        stack.stop()
        server.stop()


@pytest.mark.timeout(300)
def test_a_redis_restart_with_a_call_in_flight_pays_the_call_once(tmp_path, llmock):
    llmock.script({"type": "delay", "seconds": 32, "times": 1})
    server, stack = _outage_stack(tmp_path, llmock, appendonly=True)
    try:
        job_id = stack.generate(idea="The restart", total_segments=1, segments_per_set=1)
        wait_until(lambda: _bible_running(stack, job_id), 30, "the bible's attempt")
        server.stop()  # redis-server shuts down, its append-only file on disk
        threading.Event().wait(25)  # the outage itself: 25 s without Redis
        server.start()
        _one_call_per_unit(stack, llmock, job_id)
        assert all(w.proc.poll() is None for w in stack.workers), "a worker exited"
    finally:
        stack.stop()
        server.stop()


def _snapshot(stack: Stack, job_id: str) -> tuple[dict, dict]:
    files = {str(p): p.stat().st_mtime_ns for p in stack.output_root.rglob("*.json")}
    return stack.store.get(job_id), files


def _workers_idle(stack: Stack) -> bool:
    inspect = stack.celery.control.inspect(timeout=1)
    busy = [inspect.active() or {}, inspect.reserved() or {}, inspect.scheduled() or {}]
    return bool(busy[0]) and not any(tasks for found in busy for tasks in found.values())


def test_a_job_seen_cancelled_never_changes(make_stack):
    stack = make_stack(concurrency=2, OFFLINE_LATENCY_S="3")
    job_id = stack.generate(idea="The night shift ends", total_segments=6, segments_per_set=1)
    wait_until(lambda: sum(s["status"] == "running" for s in stack.store.get(job_id)["sets"]) == 2,
               30, "two running sets")
    answer = stack.post(f"/jobs/{job_id}/cancel")
    assert answer.status_code == 200 and answer.json()["state"] == "cancelling", answer.text
    assert stack.post(f"/jobs/{job_id}/cancel").status_code == 409  # one cancel is enough
    job = stack.wait_job(job_id, timeout=60)
    assert job["state"] == "cancelled"
    statuses = [s["status"] for s in job["result"]["sets"]]
    assert statuses.count("success") == 2 and statuses.count("cancelled") == 4, statuses
    before = _snapshot(stack, job_id)
    assert len([f for f in before[1] if "_set_" in f]) == 2  # the running sets' files, written before
    wait_until(lambda: _workers_idle(stack), 30, "the workers to be idle")
    assert _snapshot(stack, job_id) == before  # no file, record or timestamp moved after the end


def test_a_copy_of_a_message_claims_nothing(fresh_redis_url):
    store = JobStore.from_url(fresh_redis_url, 600)
    plan = {"set_number": 1, "first_segment": 1, "last_segment": 1}
    store.create("j1", {"max_retries": 2}, [plan], "offline")
    lease = ("movie_gen:job:j1:lease:1", "token")
    store.redis.set(lease[0], lease[1])
    record = {**plan, "status": "running", "run": 1, "attempts": [{"attempt": 1}]}
    claim = lambda attempt: store.claim_attempt("j1", 1, record, "t1", 1, attempt, lease)  # noqa: E731
    assert claim(2) == 0  # attempt 2 cannot start before attempt 1
    assert claim(1) == 1  # the first delivery claims attempt 1
    assert claim(1) == 2  # its worker died: a delivery holding the lease runs attempt 1 again
    store.update_unit_if("j1", 1, ("running",), "retrying")
    assert claim(1) == 0  # a copy of the first message, once attempt 1 has ended
    assert claim(2) == 1 and claim(3) == 0  # the retry's message; a copy with a count ahead
    assert store.claim_attempt("j1", 1, record, "t1", 1, 2, (lease[0], "other")) == -1
    store.update_unit_if("j1", 1, ("running",), "retrying")
    store.request_cancel("j1")
    assert claim(3) == -3  # a job being cancelled starts no attempt


def test_a_channel_closed_after_its_connection_puts_its_messages_back(fresh_redis_url):
    # kombu's own Redis channel raises AttributeError('... no attribute hostname') here and the
    # worker exits (celery/kombu#970's code path); ours restores the message.
    from kombu import Connection

    from movie_gen.execution.redis_broker import Transport

    url = fresh_redis_url
    connection = Connection(url, transport=Transport)
    channel = connection.channel()
    queue = connection.SimpleQueue("restore-test", channel=channel)
    queue.put({"set": 1})
    queue.get(timeout=5)  # delivered, not acknowledged
    connection.transport.client = None  # the Connection was closed first, as on a broker restart
    channel.close()
    assert redis.Redis.from_url(url).llen("restore-test") == 1  # the message is back in its queue
