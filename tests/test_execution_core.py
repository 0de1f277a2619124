"""The execution core: Celery's own retry and task states, flat cost per set, bounded messages."""

from __future__ import annotations

import re

import pytest


def test_a_set_that_fails_for_good_is_a_celery_failure_and_the_job_still_ends(make_stack):
    stack = make_stack(OFFLINE_FAIL_SETS="2")
    job_id = stack.generate(idea="A signal from the deep", total_segments=3, segments_per_set=1,
                            max_retries=1)
    job = stack.wait_job(job_id)
    assert job["state"] == "partial"
    assert job["result"]["generation_summary"]["failed_set_numbers"] == [2]
    assert "error" not in job["result"]  # the set's own record says why, not the job
    records = {s["set_number"]: s for s in stack.store.get(job_id)["sets"]}
    failed = stack.celery.AsyncResult(records[2]["task_id"])
    assert failed.state == "FAILURE"
    assert str(failed.result).startswith("Failed to generate set 2 after 2 attempts: offline writer")
    assert job["result"]["sets"][1]["error"] == str(failed.result)
    # successes are not kept as task results: the job store holds every outcome
    assert stack.celery.AsyncResult(records[1]["task_id"]).state == "PENDING"


@pytest.fixture(scope="module")
def big_job(make_stack):
    stack = make_stack(concurrency=2)
    job_id = stack.generate(idea="Two hundred doors", total_segments=200, segments_per_set=1)
    return stack, job_id, stack.wait_job(job_id, timeout=170)


@pytest.mark.timeout(240)
def test_no_process_keeps_a_result_subscription_per_task(big_job):
    stack, job_id, job = big_job
    assert job["state"] == "completed"
    task_ids = [s["task_id"] for s in stack.store.get(job_id)["sets"]]
    channels = [f"movie_gen:celery-task-meta-{task_id}" for task_id in task_ids]
    counts = dict(stack.store.redis.pubsub_numsub(*channels))
    assert sum(counts.values()) == 0, {k: v for k, v in counts.items() if v}


@pytest.mark.timeout(240)
def test_the_job_url_shows_one_page_of_sets_and_pages_the_rest(big_job):
    stack, job_id, _ = big_job
    response = stack.get(f"/jobs/{job_id}")
    body = response.json()
    result = body["result"]
    assert body["progress"]["sets_total"] == 200 and body["progress"]["sets_succeeded"] == 200
    assert len(result["sets"]) == 100 and "attempt_history" not in result["sets"][0]
    assert result["sets_next"] == f"/jobs/{job_id}/sets?cursor=101"
    assert len(response.content) < 40_000
    numbers, url = [], f"/jobs/{job_id}/sets?limit=70"
    while url:
        page = stack.get(url).json()
        numbers += [s["set_number"] for s in page["sets"]]
        assert all(len(s["attempt_history"]) == 1 for s in page["sets"])
        url = page["next_cursor"] and f"/jobs/{job_id}/sets?limit=70&cursor={page['next_cursor']}"
    assert numbers == list(range(1, 201))
    assert stack.get(f"/jobs/{job_id}/sets", params={"cursor": 0}).status_code == 400
    assert stack.get(f"/jobs/{'f' * 32}/sets").status_code == 404


def test_rate_limit_waits_cost_at_most_two_messages_per_attempt_and_no_retries(make_stack):
    stack = make_stack(LLM_RATE_LIMIT="4/second", OFFLINE_LATENCY_S="0.01", LLM_RATE_WAIT_MAX_S="0.3")
    job_id = stack.generate(idea="Queue at the gate", total_segments=12, segments_per_set=1,
                            max_retries=0)
    job = stack.wait_job(job_id)
    assert job["state"] == "completed"
    assert all(s["attempts"] == 1 for s in job["result"]["sets"])
    received = re.findall(r"Task movie_gen.generate_set\[([0-9a-f-]+)\] received", stack.logs())
    assert 12 <= len(received) <= 24
    assert max(received.count(task_id) for task_id in set(received)) <= 2
    assert "model call slot in" in stack.logs()  # some waits were long enough to be scheduled


def test_the_offline_writer_is_not_held_to_the_model_rate_limit(make_stack):
    stack = make_stack(LLM_RATE_LIMIT="1/minute")
    job_id = stack.generate(idea="No model, no queue", total_segments=6, segments_per_set=1)
    assert stack.wait_job(job_id, timeout=50)["state"] == "completed"
