"""A spent model quota: the job stops calling the model, says when to retry, and a scheduled retry
runs at that time, also after a worker restart."""

from __future__ import annotations

import time

from movie_gen.store.job_model import parse_timestamp

from .conftest import openai_env

QUOTA = {"type": "fail", "status": 429, "code": "insufficient_quota", "times": None,
         "message": "You exceeded your current quota, please check your plan and billing details."}


def test_a_spent_quota_ends_the_job_and_a_scheduled_retry_finishes_it(make_stack, llmock):
    llmock.reset()
    stack = make_stack(concurrency=1, **openai_env(llmock, QUOTA_RETRY_AFTER_S="6",
                                                   LLM_RATE_LIMIT="2/second", OPENAI_TIMEOUT_S="20"))
    # The bible's call is answered at once; set 1's call is held 8 s at the model server. The
    # quota runs out while that call is held, so set 1 is paid and set 2 is the first to meet
    # it, however fast the worker is.
    llmock.hold(8, after=1)
    job_id = stack.generate(idea="The last reel of film", total_segments=3, segments_per_set=1,
                            max_retries=3)
    llmock.wait_held("set 1's model call")
    llmock.script(QUOTA)  # from now on every call answers 429 insufficient_quota
    job = stack.wait_job(job_id)
    result = job["result"]
    assert job["state"] == "partial", (result, llmock.chat_requests())
    assert [s["status"] for s in result["sets"]] == ["success", "failed", "failed"]
    not_before = result["retry_info"]["not_before"]
    assert "quota" in result["error"] and not_before in result["error"]
    assert result["sets"][2]["error"].startswith("Set 3 was not attempted: ")
    assert len(llmock.chat_requests()) == 3  # the bible, set 1, and the one call that met the quota
    assert result["sets"][1]["attempts"] == 1  # a spent quota is not retried with backoff

    llmock.reset()
    response = stack.post("/retry-failed-story-sets", json={"job_id": job_id, "when": "not_before"})
    assert response.status_code == 202, response.text
    assert response.json()["result"]["retry_info"]["scheduled_at"] == not_before
    stack.restart_workers()  # the schedule lives in Redis, not in a worker
    deadline = time.monotonic() + 60
    while (job := stack.get(f"/jobs/{job_id}", params={"wait": 5}).json())["state"] != "completed":
        assert time.monotonic() < deadline, job["result"]
    retry = job["result"]["retry_info"]
    assert retry["retried_sets"] == [2, 3]
    assert parse_timestamp(retry["retry_timestamp"]) >= parse_timestamp(not_before)
    assert "not_before" not in retry and "error" not in job["result"]


def test_when_not_before_needs_a_spent_quota(offline_stack):
    job_id = offline_stack.generate(idea="Nothing to wait for", total_segments=1, max_retries=0)
    offline_stack.wait_job(job_id)
    response = offline_stack.post("/retry-failed-story-sets", json={"job_id": job_id, "when": "later"})
    assert response.status_code == 400 and "when" in response.json()["errors"]
