"""Per-set retry with backoff, and POST /retry-failed-story-sets, with the offline writer's faults."""

from __future__ import annotations

import threading

import pytest

from movie_gen.store.job_model import parse_timestamp


def _starts(history: list[dict]) -> list[float]:
    return [parse_timestamp(a["started_at"]) for a in history]


def _file_state(stack, relative: str) -> tuple[bytes, int]:
    path = stack.output_root / relative
    return path.read_bytes(), path.stat().st_mtime_ns


@pytest.fixture(scope="module")
def failing_stack(make_stack):
    """Set 2 fails on every attempt; Celery's backoff at its smallest base, 1 s (1, 2, 4 s)."""
    return make_stack(OFFLINE_FAIL_SETS="2", RETRY_BACKOFF_BASE="1")


@pytest.fixture(scope="module")
def partial_job(failing_stack):
    job_id = failing_stack.generate(idea="A courier crosses a frozen sea", total_segments=30,
                                    max_retries=3)
    return job_id, failing_stack.wait_job(job_id)


def test_a_set_failing_for_good_gets_exactly_1_plus_max_retries_attempts(partial_job):
    job_id, job = partial_job
    assert job["state"] == "partial"
    result = job["result"]
    failed = result["sets"][1]
    assert failed["status"] == "failed" and failed["attempts"] == 4
    assert failed["error"].startswith("Failed to generate set 2 after 4 attempts: ")
    history = failed["attempt_history"]
    assert [a["attempt"] for a in history] == [1, 2, 3, 4]
    assert all(a["error_class"] == "transient" and "OFFLINE_FAIL_SETS" in a["error"] for a in history)
    assert [a.get("delay_s") for a in history] == [1, 2, 4, None]
    starts = _starts(history)
    for before, after, delay in zip(starts, starts[1:], (1, 2, 4)):
        assert delay - 0.05 <= after - before <= delay + 2.5  # above: how late a busy worker starts it
    assert [s["attempts"] for s in result["sets"]] == [1, 4, 1]
    assert result["retry_statistics"] == {"attempts_per_set": {"1": 1, "2": 4, "3": 1}, "total_retries": 3}


def test_retry_endpoint_regenerates_only_the_failed_set(failing_stack, partial_job):
    stack = failing_stack
    job_id, job = partial_job
    before = {s["set_number"]: _file_state(stack, s["file_path"])
              for s in job["result"]["sets"] if s["status"] == "success"}
    calls_before = job["result"]["token_usage"]["model_calls"]
    stack.restart_workers(OFFLINE_FAIL_SETS="")

    response = stack.post("/retry-failed-story-sets", json={"previous_result": job["result"]})
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/jobs/{job_id}"
    job = stack.wait_job(job_id)
    assert job["state"] == "completed"
    result = job["result"]
    assert result["success"] is True
    summary = result["generation_summary"]
    assert summary["total_segments_generated"] == 30 and summary["failed_sets"] == 0
    assert summary["successful_sets"] == 3
    retry = result["retry_info"]
    assert retry["retry_performed"] is True and retry["retry_timestamp"].endswith("Z")
    assert retry["retry_results"] == [{"set_number": 2, "status": "success", "segments_generated": 10}]
    assert result["token_usage"]["model_calls"] == calls_before + 1
    for number, state in before.items():
        assert _file_state(stack, result["sets"][number - 1]["file_path"]) == state
    assert (stack.output_root / result["sets"][1]["file_path"]).exists()
    metadata = (stack.output_root / result["metadata_file"]).read_text()
    assert '"retry_performed": true' in metadata and '"state": "completed"' in metadata

    again = stack.post("/retry-failed-story-sets", json={"job_id": job_id})
    assert again.status_code == 409
    assert "nothing to retry" in again.json()["message"]


def test_forged_previous_result_cannot_redirect_or_regenerate(make_stack):
    stack = make_stack(OFFLINE_FAIL_SETS="1")
    job_id = stack.generate(idea="Forgery", total_segments=2, segments_per_set=1, max_retries=0)
    job = stack.wait_job(job_id)
    assert job["result"]["generation_summary"]["failed_set_numbers"] == [1]
    good = job["result"]["sets"][1]
    state = _file_state(stack, good["file_path"])
    forged = {**job["result"], "story_title": "../../etc", "retry_info": {"failed_sets": [2]},
              "sets": [{"set_number": 2, "status": "failed", "file_path": "/etc/passwd"}],
              "generation_summary": {"failed_set_numbers": [2]}}
    stack.restart_workers(OFFLINE_FAIL_SETS="")
    response = stack.post("/retry-failed-story-sets", json={"previous_result": forged, "wait": 60})
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["retry_info"]["retry_results"] == [
        {"set_number": 1, "status": "success", "segments_generated": 1}]
    assert _file_state(stack, good["file_path"]) == state
    assert result["story_title"] == job["result"]["story_title"]
    assert all(s["file_path"].startswith("generated_movie_script/") for s in result["sets"])

    unknown = stack.post("/retry-failed-story-sets", json={"previous_result": {"job_id": "f" * 32}})
    assert unknown.status_code == 404


@pytest.mark.parametrize("body, field", [
    ({"job_id": "x", "max_retries": 0}, "max_retries"),
    ({"job_id": "x", "max_retries": 11}, "max_retries"),
    ({"job_id": "x", "max_retries": "x"}, "max_retries"),
    ({}, "job_id"),
    ({"previous_result": {"story_title": "no id"}}, "previous_result"),
    ({"previous_result": "text"}, "previous_result"),
    ({"job_id": "a" * 32, "previous_result": {"job_id": "b" * 32}}, "previous_result"),
    ({"job_id": "x", "surprise": 1}, "surprise"),
])
def test_retry_rejects_bad_input(offline_stack, body, field):
    response = offline_stack.post("/retry-failed-story-sets", json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()["errors"]


def test_retry_of_a_running_job_is_refused_and_concurrent_retries_run_once(make_stack):
    stack = make_stack(OFFLINE_FAIL_SETS="2", OFFLINE_LATENCY_S="0.5")
    job_id = stack.generate(idea="Conflicts", total_segments=2, segments_per_set=1, max_retries=0)
    running = stack.post("/retry-failed-story-sets", json={"job_id": job_id})
    assert running.status_code == 409 and "still running" in running.json()["message"]
    assert stack.wait_job(job_id)["state"] == "partial"

    answers: list[int] = []
    barrier = threading.Barrier(4)

    def retry() -> None:
        barrier.wait()
        answers.append(stack.post("/retry-failed-story-sets",
                                  json={"job_id": job_id, "max_retries": 1}).status_code)

    threads = [threading.Thread(target=retry) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(answers) == [202, 409, 409, 409]
    job = stack.wait_job(job_id)
    runs = [a["run"] for a in job["result"]["sets"][1]["attempt_history"]]
    assert runs == [1, 2, 2]  # the job's one attempt, then one retry run of 1 + max_retries


def test_retry_works_after_the_redis_record_is_gone(make_stack):
    stack = make_stack(OFFLINE_FAIL_SETS="3")
    job_id = stack.generate(idea="Lost and found", total_segments=3, segments_per_set=1, max_retries=0)
    assert stack.wait_job(job_id)["state"] == "partial"
    stack.store.redis.delete(stack.store.key(job_id))
    stack.restart_workers(OFFLINE_FAIL_SETS="")
    response = stack.post("/retry-failed-story-sets", json={"job_id": job_id, "wait": 60})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "completed"
    assert body["result"]["retry_info"]["retry_results"][0]["set_number"] == 3


def test_retry_with_real_2_4_8_second_backoff(make_stack):
    stack = make_stack(OFFLINE_FAIL_SETS="1", RETRY_BACKOFF_BASE="2")
    job_id = stack.generate(idea="Patience", total_segments=1, max_retries=3)
    job = stack.wait_job(job_id, timeout=90)
    history = job["result"]["sets"][0]["attempt_history"]
    assert [a.get("delay_s") for a in history] == [2, 4, 8, None]
    starts = _starts(history)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    for gap, expected in zip(gaps, (2, 4, 8)):
        assert expected - 0.05 <= gap <= expected + 2, gaps  # above: how late a busy worker starts it


def test_a_set_that_cannot_be_saved_fails_with_the_os_error(offline_stack):
    # A directory where set 2's file must go: the rename fails like a full or read-only disk would.
    blocked = offline_stack.output_root / "blocked" / "Disk_Trouble_set_02.json"
    blocked.mkdir(parents=True)
    job_id = offline_stack.generate(idea="Disk trouble", total_segments=3, segments_per_set=1,
                                    output_directory="blocked", max_retries=3)
    job = offline_stack.wait_job(job_id)
    assert job["state"] == "partial"
    failed = job["result"]["sets"][1]
    assert failed["status"] == "failed" and failed["attempts"] == 1
    assert "cannot save set 2" in failed["error"] and "Is a directory" in failed["error"]
    assert failed["attempt_history"][0]["error_class"] == "storage"
    assert [s["status"] for s in job["result"]["sets"]] == ["success", "failed", "success"]


def test_a_job_whose_tasks_were_lost_is_flagged_and_can_be_retried(make_stack):
    # A job record without any task message (as after a Redis restart that kept the job but not
    # the queue): once idle for STALL_TIMEOUT_S its job URL says so, and a retry runs the rest.
    import time

    from movie_gen.jobs.submit import submit_job

    stack = make_stack(STALL_TIMEOUT_S="3")

    class LostMessages:
        """Stands in for the Celery app when the messages are lost on the way."""

        def signature(self, *args, **kwargs):
            raise ConnectionError("lost")

    services = stack.app.extensions["movie_gen"]["services"]
    body = {"idea": "Lost in the queue", "total_segments": 2, "segments_per_set": 1,
            "save_to_files": True, "output_directory": "lost", "max_retries": 0}
    with pytest.raises(ConnectionError):
        submit_job(services, LostMessages(), body)
    [row] = stack.store.list_jobs(None, None, 1, None)[0]
    job_id = row["job_id"]
    stack.store.set_state(job_id, "generating")  # as if it had been running when its tasks vanished
    early = stack.post("/retry-failed-story-sets", json={"job_id": job_id})
    assert early.status_code == 409 and "still running" in early.json()["message"]
    deadline = time.monotonic() + 20
    while "stalled" not in (job := stack.get(f"/jobs/{job_id}").json()):
        assert time.monotonic() < deadline
        stack.get(f"/jobs/{job_id}", params={"wait": 0.2})
    assert job["state"] == "generating" and job["stalled"]["idle_s"] >= 3
    response = stack.post("/retry-failed-story-sets", json={"job_id": job_id, "wait": 60})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "completed"
