"""GET /jobs/<id>/events over real HTTP, one subscription per process, and waits that answer fresh."""

from __future__ import annotations

import json
import threading
import time
from typing import Any, Iterator

import pytest
import requests

from movie_gen.store.job_model import UnitStatus

KEY_A, KEY_B = "events-key-a", "events-key-b"


def read_events(response: requests.Response) -> Iterator[dict[str, Any]]:
    """The events of a text/event-stream answer, as {id, event, data}."""
    event: dict[str, Any] = {}
    for line in response.iter_lines(decode_unicode=True):
        if not line:
            if "data" in event:
                yield event
            event = {}
        elif line.startswith(("id:", "event:", "data:")):
            name, _, value = line.partition(":")
            event[name] = json.loads(value) if name == "data" else value.strip()


def follow(stack, job_id: str, timeout: float = 60, **headers: str) -> list[dict[str, Any]]:
    """Every event of the job's stream until its `end`."""
    with requests.get(f"{stack.base_url}/jobs/{job_id}/events", stream=True, timeout=timeout,
                      headers=headers) as response:
        assert response.status_code == 200, response.text
        assert response.headers["Content-Type"].startswith("text/event-stream")
        events = []
        for event in read_events(response):
            events.append(event)
            if event["event"] == "end":
                return events
    raise AssertionError(f"the stream closed without an end event: {events}")


def test_a_stream_shows_every_set_change_and_ends_with_the_job(make_stack):
    stack = make_stack(OFFLINE_FAIL_FIRST_RUN_SETS="2", OFFLINE_LATENCY_S="0.3")
    job_id = stack.generate(idea="A bell that rings once a century", total_segments=3,
                            segments_per_set=1, max_retries=1)
    events = follow(stack, job_id)
    assert all(e["id"].isdigit() for e in events)
    assert [int(e["id"]) for e in events] == sorted(int(e["id"]) for e in events)
    statuses = {n: [e["data"]["status"] for e in events if e["event"] == "set"
                    and e["data"]["set_number"] == n] for n in (1, 2, 3)}
    assert statuses[1][-1] == statuses[3][-1] == "success"
    assert "running" in statuses[2] and statuses[2][-1] == "failed"
    failed = [e["data"] for e in events if e["event"] == "set" and e["data"]["status"] == "failed"][-1]
    assert failed["error"].startswith("Failed to generate set 2 after 2 attempts")
    assert len(failed["attempt_history"]) == 2
    assert events[-1]["event"] == "end" and events[-1]["data"]["state"] == "partial"
    assert events[-1]["data"]["progress"]["sets_failed"] == 1
    # a reconnect (here after the end) gets the job and every set as they are now
    again = follow(stack, job_id, **{"Last-Event-ID": events[-1]["id"]})
    assert [e["event"] for e in again] == ["job", "set", "set", "set", "end"]
    assert [e["data"]["status"] for e in again[1:4]] == ["success", "failed", "success"]


def _queued_job(stack, sets: int = 2) -> str:
    """A job in the store with no message sent: only the test changes it, as a worker would."""
    job_id = f"{time.time_ns():032x}"[-32:]
    stack.store.create(job_id, {"idea": "x", "total_segments": sets, "segments_per_set": 1,
                                "max_retries": 1, "output_directory": "out"},
                       [{"set_number": n, "first_segment": n, "last_segment": n, "task_id": f"t{n}"}
                        for n in range(1, sets + 1)], "offline")
    return job_id


def test_changes_reach_every_open_stream_through_one_subscription(offline_stack):
    job_id = _queued_job(offline_stack)
    responses = [requests.get(f"{offline_stack.base_url}/jobs/{job_id}/events", stream=True,
                              timeout=30) for _ in range(5)]
    streams = [read_events(r) for r in responses]
    firsts = [[next(s) for _ in range(3)] for s in streams]  # job, set 1, set 2
    assert all([e["event"] for e in f] == ["job", "set", "set"] for f in firsts)
    hub = offline_stack.app.extensions["movie_gen"]["events"]
    assert len(hub._feeds) == 1 and hub.subscribers() == 5
    channels = offline_stack.store.redis.execute_command("PUBSUB", "NUMPAT")
    assert channels >= 1
    assert offline_stack.store.update_unit_if(job_id, 1, (UnitStatus.PENDING,), UnitStatus.RUNNING)
    for stream in streams:
        event = next(stream)
        assert (event["event"], event["data"]["set_number"], event["data"]["status"]) == ("set", 1, "running")
    offline_stack.store.set_state(job_id, "failed", error="stopped by the test")
    for stream in streams:
        kinds = []
        while not kinds or kinds[-1] != "end":
            kinds.append(next(stream)["event"])
        assert kinds == ["job", "end"]
    for response in responses:
        response.close()


def test_another_keys_job_has_no_stream(make_stack):
    stack = make_stack(MOVIE_GEN_API_KEYS=f"{KEY_A},{KEY_B}", API_RATE_LIMIT="1000/minute")
    response = stack.post("/generate-movie-auto", headers={"Authorization": f"Bearer {KEY_A}"},
                          json={"idea": "A kite over a flooded city", "total_segments": 1})
    job_id = response.json()["job_id"]
    other = stack.get(f"/jobs/{job_id}/events", headers={"Authorization": f"Bearer {KEY_B}"})
    assert other.status_code == 404 and other.json()["code"] == 404
    assert stack.get(f"/jobs/{job_id}/events").status_code == 401
    events = follow(stack, job_id, Authorization=f"Bearer {KEY_A}")
    assert events[-1]["data"]["state"] == "completed"


@pytest.mark.timeout(60)
def test_a_wait_that_runs_out_answers_the_job_as_it_is_then(offline_stack):
    job_id = _queued_job(offline_stack)

    def work() -> None:  # a set is written while the client waits; the job does not end
        offline_stack.store.advance_state(job_id, "generating")
        record = offline_stack.store.get_record(job_id, 1)
        offline_stack.store.update_unit_if(job_id, 1, (UnitStatus.PENDING,), UnitStatus.SUCCESS, record=record)

    timer = threading.Timer(0.5, work)
    timer.start()
    body = offline_stack.get(f"/jobs/{job_id}", params={"wait": 2}).json()
    timer.join()
    assert body["state"] == "generating"
    assert body["progress"]["sets_succeeded"] == 1


@pytest.mark.timeout(120)
def test_a_post_whose_wait_runs_out_answers_the_job_as_it_is_then(make_stack):
    stack = make_stack(OFFLINE_LATENCY_S="1", concurrency=1)
    response = stack.post("/generate-movie-auto", json={
        "idea": "A clock that runs backwards", "total_segments": 12, "segments_per_set": 1, "wait": 6})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["state"] == "generating" and body["progress"]["sets_succeeded"] >= 1
    stack.wait_job(body["job_id"])


@pytest.mark.timeout(90)
def test_a_stopping_gunicorn_process_ends_its_streams_at_once(offline_stack, tmp_path):
    import os
    import signal

    from .servers import GunicornServer

    server = GunicornServer(offline_stack.env, tmp_path / "gunicorn.log")
    try:
        job_id = _queued_job(offline_stack, sets=1)
        with requests.get(f"{server.base_url}/jobs/{job_id}/events", stream=True, timeout=30) as response:
            events = read_events(response)
            assert [next(events)["event"] for _ in range(2)] == ["job", "set"]
            os.killpg(server.proc.pid, signal.SIGTERM)
            started = time.monotonic()
            with pytest.raises((StopIteration, requests.exceptions.ChunkedEncodingError)):
                next(events)  # the stream closes, without waiting for the job or graceful_timeout
            assert time.monotonic() - started < 10
    finally:
        server.stop()
