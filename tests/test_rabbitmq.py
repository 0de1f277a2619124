"""RabbitMQ as the broker (BROKER_URL=amqp://…, a vhost per stack): the job store stays in Redis.

The core flow, a retry from the endpoint, a worker killed whole (the broker gives its sets back at
once) and a set that kills its worker every time (dead-lettered after the delivery limit).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from movie_gen.config.settings import Settings, SettingsError
from movie_gen.execution.broker import broker_config
from movie_gen.execution.canvas import SET_TASK

from .conftest import Stack
from .servers import FlowerServer, wait_until

pytestmark = pytest.mark.timeout(150)


def _set_files(stack: Stack) -> dict[str, int]:
    """Each set file under OUTPUT_ROOT with its modification time."""
    return {p.name: p.stat().st_mtime_ns for p in stack.output_root.rglob("*_set_*.json")}


def _running_sets(stack: Stack, job_id: str, count: int) -> list[int]:
    job = stack.store.get(job_id)
    running = [s["set_number"] for s in (job or {}).get("sets", []) if s["status"] == "running"]
    return running if len(running) >= count else []


def test_broker_settings_follow_the_broker_url():
    redis = broker_config(Settings.from_env({"REDIS_URL": "redis://r:6379/1"}))
    assert redis["broker_url"] == "redis://r:6379/1" and redis["task_queues"] is None
    assert redis["broker_transport_options"]["global_keyprefix"] == "movie_gen:"
    rabbit = broker_config(Settings.from_env({"BROKER_URL": "amqp://u:p@mq:5672/v", "DELIVERY_LIMIT": "4"}))
    assert rabbit["broker_url"] == "amqp://u:p@mq:5672/v"
    queue, dead = rabbit["task_queues"]
    assert (queue.name, queue.exchange.type, dead.name) == ("movie_gen", "topic", "movie_gen.dead")
    # RabbitMQ dead-letters a message returned more than x-delivery-limit times: 4 lost deliveries
    assert queue.queue_arguments == {"x-queue-type": "quorum", "x-delivery-limit": 3,
                                     "x-dead-letter-exchange": "movie_gen.dead",
                                     "x-dead-letter-routing-key": "movie_gen.dead"}
    assert rabbit["task_default_queue_type"] == "quorum" and rabbit["worker_detect_quorum_queues"]


def test_a_broker_url_of_another_kind_is_refused_without_echoing_it():
    with pytest.raises(SettingsError, match="BROKER_URL must start with one of") as refused:
        Settings.from_env({"BROKER_URL": "kafka://user:hunter2@k:9092"})
    assert "hunter2" not in str(refused.value)


def test_a_job_completes_through_a_quorum_queue(make_rabbitmq_stack, rabbitmq):
    stack = make_rabbitmq_stack()
    job_id = stack.generate(idea="A lighthouse keeper hears the sea sing", total_segments=6,
                            segments_per_set=2)
    job = stack.wait_job(job_id)
    assert job["state"] == "completed", job["result"]
    sets = job["result"]["sets"]
    assert [s["status"] for s in sets] == ["success"] * 3
    assert all((stack.output_root / s["file_path"]).exists() for s in sets)
    assert len(_set_files(stack)) == 3
    queues = rabbitmq.queue_types(stack.settings.celery_broker_url)
    assert queues["movie_gen"] == "quorum"
    assert queues["movie_gen.dead"] == "quorum"
    assert queues["celery_delayed_0"] == "quorum"  # countdowns wait in the broker, not in a worker
    # a sub-second countdown (a Retry-After of 0.4 s) is rounded up, not refused by Celery
    stack.celery.send_task(SET_TASK, args=("no-such-job", 1), countdown=0.4, ignore_result=True)
    wait_until(lambda: "no-such-job" in stack.logs(), 30, "the delayed message to arrive")


def test_a_failed_set_is_retried_from_the_endpoint(make_rabbitmq_stack):
    # set 2 fails in the job's first run: its one retry waits 1 s in the broker (native delayed
    # delivery), fails too, and the job ends partial; the retry's second run succeeds
    stack = make_rabbitmq_stack(OFFLINE_FAIL_FIRST_RUN_SETS="2", RETRY_BACKOFF_BASE="1")
    job_id = stack.generate(idea="A courier crosses a frozen sea", total_segments=6,
                            segments_per_set=2, max_retries=1)
    job = stack.wait_job(job_id)
    assert job["state"] == "partial"
    failed = job["result"]["sets"][1]
    assert failed["status"] == "failed" and failed["attempts"] == 2
    assert [a.get("delay_s") for a in failed["attempt_history"]] == [1, None]
    before = _set_files(stack)
    assert len(before) == 2

    response = stack.post("/retry-failed-story-sets", json={"job_id": job_id})
    assert response.status_code == 202, response.text
    job = stack.wait_job(job_id)
    assert job["state"] == "completed", job["result"]
    assert job["result"]["retry_info"]["retry_results"] == [
        {"set_number": 2, "status": "success", "segments_generated": 2}]
    after = _set_files(stack)
    assert len(after) == 3
    assert {name: after[name] for name in before} == before  # the other sets were not written again


def test_a_worker_killed_whole_has_its_sets_delivered_again_at_once(make_rabbitmq_stack):
    # short leases and a recovery check twice a second: on Redis they would send the lost sets
    # again; on RabbitMQ the broker alone re-delivers them
    stack = make_rabbitmq_stack(workers=2, concurrency=2, OFFLINE_LATENCY_S="4", LEASE_TTL_S="2",
                                RECOVERY_INTERVAL_S="0.5")
    job_id = stack.generate(idea="The night train stops nowhere", total_segments=4, segments_per_set=1)
    wait_until(lambda: _running_sets(stack, job_id, 4), 60, "four running sets", interval=0.1)
    worker = stack.workers.pop(0)
    os.killpg(worker.proc.pid, signal.SIGKILL)  # main process and pool: its connection closes
    worker.proc.wait(timeout=10)
    killed_at = time.monotonic()
    job = stack.wait_job(job_id, timeout=60)
    took = time.monotonic() - killed_at
    assert job["state"] == "completed", job["result"]
    assert took < 20, f"the job completed {took:.1f}s after the kill"
    histories = {s["set_number"]: [a["outcome"] for a in s["attempt_history"]]
                 for s in job["result"]["sets"]}
    lost = [n for n, outcomes in histories.items() if outcomes == ["worker_lost", "success"]]
    assert lost, f"no set was running on the killed worker: {histories}"
    assert all(outcomes in (["success"], ["worker_lost", "success"]) for outcomes in histories.values())
    # one model call for the bible and one per set: the killed calls never returned
    assert stack.store.get(job_id)["llm_calls"] == 5
    assert len(_set_files(stack)) == 4
    assert "unit lost with its worker" not in stack.logs()  # the broker re-delivered; no recovery re-send


def test_a_set_that_kills_its_worker_every_time_is_dead_lettered(make_rabbitmq_stack):
    stack = make_rabbitmq_stack(OFFLINE_CRASH_SETS="2", DELIVERY_LIMIT="3")
    flower = FlowerServer(stack.env, stack.workdir / "flower.log")
    try:
        job_id = stack.generate(idea="The cursed reel", total_segments=3, segments_per_set=1)
        job = stack.wait_job(job_id, timeout=90)
        failed_task = wait_until(lambda: flower.tasks(state="FAILURE"), 30, "Flower to show the failure")
    finally:
        flower.stop()
    assert job["state"] == "partial"
    sets = job["result"]["sets"]
    assert [s["status"] for s in sets] == ["success", "failed", "success"]
    failed = sets[1]
    assert "delivered 3 times; its worker was lost every time (x-delivery-limit)" in failed["error"]
    assert [a["outcome"] for a in failed["attempt_history"]] == ["worker_lost"] * 3
    assert all(Path(stack.output_root, s["file_path"]).exists() for s in sets if s["status"] == "success")
    assert "dead-lettered by the broker" in stack.logs()
    [(task_id, task)] = failed_task.items()
    assert task_id == stack.store.set_task_ids(job_id)[2]
    assert "x-delivery-limit" in task["exception"]


def test_a_running_set_whose_message_the_broker_dead_letters_is_not_failed(make_rabbitmq_stack, rabbitmq):
    # DELIVERY_LIMIT=1: the first message given back is dead-lettered. The broker gives back the
    # running set when its connection closes, although the attempt goes on: the dead-lettered
    # delivery finds the live attempt's lease and backs off, and the set is written once.
    stack = make_rabbitmq_stack(DELIVERY_LIMIT="1", OFFLINE_LATENCY_S="6")
    job_id = stack.generate(idea="The signal in the static", total_segments=1, segments_per_set=1)
    wait_until(lambda: _running_sets(stack, job_id, 1), 60, "the running set", interval=0.1)
    broker = stack.settings.celery_broker_url
    assert rabbitmq.close_connections(broker) > 0
    job = stack.wait_job(job_id, timeout=60)
    assert job["state"] == "completed", job["result"]
    [entry] = job["result"]["sets"]
    assert [a["outcome"] for a in entry["attempt_history"]] == ["success"]
    assert "left to it" in stack.logs()
    assert stack.store.get(job_id)["llm_calls"] == 2
