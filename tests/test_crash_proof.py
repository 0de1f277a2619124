"""Faults of real processes: a worker killed whole, a dropped broker connection, Redis stopped or
emptied, a full disk, a set that kills its worker every time. Each test is bounded in time."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from .conftest import Stack, openai_env
from .servers import RedisServer

# Leases lapse within 2 s of a worker's death and every worker checks twice a second, so that
# recovery takes seconds here; the defaults (20 s, 10 s) bound it at about 40 s.
FAST_RECOVERY = {"LEASE_TTL_S": "2", "RECOVERY_INTERVAL_S": "0.5"}


def _wait_for(check, timeout: float, what: str, stack: Stack, job_id: str):
    """Poll the job (long-polls of 0.1 s) until `check(job)` holds."""
    deadline = time.monotonic() + timeout
    while not (found := check(stack.store.get(job_id))):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        stack.get(f"/jobs/{job_id}", params={"wait": 0.1})
    return found


def _running(count: int):
    return lambda job: job is not None and sum(s["status"] == "running" for s in job["sets"]) >= count


def _files(stack: Stack) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in stack.output_root.rglob("*.json")
            if ".jobs" not in p.parts}


def test_a_worker_killed_whole_is_recovered_without_waiting_for_the_broker(make_stack):
    stack = make_stack(concurrency=2, OFFLINE_LATENCY_S="2", **FAST_RECOVERY)
    job_id = stack.generate(idea="The lighthouse goes dark", total_segments=4, segments_per_set=1)
    _wait_for(_running(2), 30, "two running sets", stack, job_id)
    killed = [s["set_number"] for s in stack.store.get(job_id)["sets"] if s["status"] == "running"]
    worker = stack.workers.pop()
    os.killpg(worker.proc.pid, signal.SIGKILL)  # main process and pool, as an OOM kill or lost VM
    worker.proc.wait(timeout=10)
    killed_at = time.monotonic()
    stack.start_workers(1)
    job = stack.wait_job(job_id, timeout=90)
    assert time.monotonic() - killed_at < 90
    assert job["state"] == "completed", job["result"]
    directory = stack.output_root / "generated_movie_script"
    assert len(list(directory.glob("*_set_0[1-4].json"))) == 4
    # one model call for the bible and one per set: the killed calls never returned
    assert stack.store.get(job_id)["llm_calls"] == 5
    lost = set()
    for entry in job["result"]["sets"]:
        outcomes = [a["outcome"] for a in entry["attempt_history"]]
        assert outcomes in (["worker_lost", "success"], ["success"]), outcomes
        if outcomes[0] == "worker_lost":
            lost.add(entry["set_number"])
    # the sets seen running just before the kill (one of them may have finished in between)
    assert lost and len(lost & set(killed)) >= 1, (lost, killed)


def test_a_dropped_broker_connection_never_runs_a_set_twice(make_stack, llmock):
    # Free worker slots keep the worker's broker connection in a blocking read; killing it makes
    # the worker reconnect and put its unacknowledged messages back, so running sets come again.
    llmock.reset()
    stack = make_stack(concurrency=4, LEASE_TTL_S="10", RECOVERY_INTERVAL_S="0.5",
                       **openai_env(llmock, OPENAI_TIMEOUT_S="30"))
    # Both sets' model calls are held 8 s at the model server: the connection is dropped while
    # both sets are surely running.
    llmock.hold(8, calls=2, after=1)
    job_id = stack.generate(idea="Static on the line", total_segments=2, segments_per_set=1)
    llmock.wait_held("both sets' model calls")
    stack.store.redis.client_kill_filter(_type="normal", skipme=True)  # every client but this one
    job = stack.wait_job(job_id, timeout=60)
    assert job["state"] == "completed", job["result"]
    assert stack.store.get(job_id)["llm_calls"] == 3  # no set's model was called twice
    assert all([a["outcome"] for a in s["attempt_history"]] == ["success"] for s in job["result"]["sets"])
    assert "this delivery backs off" in stack.logs()  # the broker did deliver running sets again
    assert len(llmock.chat_requests()) == 3
    final_records, final_files = stack.store.get(job_id)["sets"], _files(stack)
    changed = threading.Event()
    deadline = time.monotonic() + 4  # a late copy would have called the model by then
    while time.monotonic() < deadline and not changed.is_set():
        if stack.store.get(job_id)["sets"] != final_records or _files(stack) != final_files:
            changed.set()
        changed.wait(0.2)
    assert not changed.is_set(), "a record or a file changed after the job's final state"


@pytest.mark.timeout(240)
def test_redis_down_for_ten_seconds_mid_set_and_the_job_still_completes(tmp_path):
    (tmp_path / "aof").mkdir()
    server = RedisServer(tmp_path / "aof", appendonly=True)
    (tmp_path / "stack").mkdir()
    stack = Stack(server, tmp_path / "stack", {"OFFLINE_LATENCY_S": "3", "LEASE_TTL_S": "30",
                                               "RECOVERY_INTERVAL_S": "1"}, workers=1, concurrency=2)
    try:
        job_id = stack.generate(idea="The storm takes the power", total_segments=4, segments_per_set=1)
        _wait_for(_running(2), 30, "two running sets", stack, job_id)
        server.stop()  # redis-server shuts down, its append-only file on disk
        threading.Event().wait(10)  # the outage itself: ten seconds without Redis
        server.start()
        job = stack.wait_job(job_id, timeout=150)
        assert job["state"] == "completed", job["result"]
        assert "retry_performed" not in job["result"]["retry_info"]  # no manual retry was needed
        assert job["result"]["generation_summary"]["successful_sets"] == 4
    finally:
        stack.stop()
        server.stop()


def test_a_job_redis_forgot_comes_back_from_disk_with_its_finished_sets(make_stack, llmock):
    llmock.reset()
    stack = make_stack(concurrency=1, **openai_env(llmock, OPENAI_TIMEOUT_S="20"), **FAST_RECOVERY)
    # The bible's and the first four sets' calls are answered at once; set 5's call is held at
    # the model server, and Redis forgets the job while it is held.
    llmock.hold(4, after=5)
    job_id = stack.generate(idea="The archive burns", total_segments=6, segments_per_set=1)
    llmock.wait_held("set 5's model call", timeout=40)
    stack.store.redis.flushdb()  # Redis without persistence restarts empty
    job = stack.get(f"/jobs/{job_id}", params={"history": "true"}).json()
    statuses = [s["status"] for s in job["result"]["sets"]]
    assert job["state"] == "failed" and statuses[:4] == ["success"] * 4, statuses
    assert statuses[4:] == ["failed", "failed"]
    assert job["result"]["story_bible"]["status"] == "success"
    assert job["result"]["token_usage"]["model_calls"] >= 5  # the bible's call and the four sets'
    assert job["result"]["retry_info"]["can_retry"] is True
    response = stack.post("/retry-failed-story-sets", json={"job_id": job_id, "wait": 60})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert response.json()["state"] == "completed"
    assert [r["set_number"] for r in result["retry_info"]["retry_results"]] == [5, 6]


def test_a_metadata_file_that_cannot_be_written_is_reported_on_the_job(make_stack, llmock):
    llmock.reset()
    stack = make_stack(**openai_env(llmock, OPENAI_TIMEOUT_S="20"))
    # Every set's call is held 2 s: the last one is still held when the metadata file's place is
    # taken, so the job has a set left to finish and its metadata to write.
    llmock.hold(2, calls=3, after=1)
    job_id = stack.generate(idea="The full disk", total_segments=3, segments_per_set=1)
    llmock.wait_held("set 3's model call")
    job = stack.store.get(job_id)
    metadata = stack.output_root / "generated_movie_script" / f"{job['file_stem']}_metadata.json"
    metadata.unlink()
    metadata.mkdir()  # the file's place is taken: its rewrite fails like a full disk would
    job = stack.wait_job(job_id)
    assert job["state"] == "completed"
    assert any("metadata file" in w and "could not be written" in w for w in job["result"]["warnings"])


def test_a_set_that_kills_its_worker_every_time_fails_after_the_delivery_budget(make_stack):
    stack = make_stack(OFFLINE_CRASH_SETS="2", DELIVERY_LIMIT="3", **FAST_RECOVERY)
    job_id = stack.generate(idea="The cursed reel", total_segments=3, segments_per_set=1)
    job = stack.wait_job(job_id, timeout=90)
    assert job["state"] == "partial"
    failed = job["result"]["sets"][1]
    assert failed["status"] == "failed" and "worker lost 3 times during this set" in failed["error"]
    outcomes = [a["outcome"] for a in failed["attempt_history"]]
    assert outcomes == ["worker_lost"] * 3 + ["error"]
    assert [s["status"] for s in job["result"]["sets"]] == ["success", "failed", "success"]
    assert all(Path(stack.output_root, s["file_path"]).exists()
               for s in job["result"]["sets"] if s["status"] == "success")
