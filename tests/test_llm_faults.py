"""Faults of an OpenAI-compatible server (llmock): what is retried, how long it waits, what fails at once."""

from __future__ import annotations

import pytest

from movie_gen.store.job_model import parse_timestamp

from .conftest import openai_env


@pytest.fixture(scope="module")
def stack(make_stack, llmock):
    return make_stack(**openai_env(llmock, OPENAI_TIMEOUT_S="3", RETRY_BACKOFF_BASE="1"))


@pytest.fixture(autouse=True)
def fresh_llmock(llmock):
    llmock.reset()
    yield


@pytest.mark.parametrize("behaviors, attempts, error_class, min_gap", [
    ([{"type": "fail", "status": 429, "retry_after": 3}], 2, "transient", 3.0),
    ([{"type": "fail", "status": 500, "times": 2}], 3, "transient", 1.0),
    ([{"type": "fail", "status": 503}], 2, "transient", 1.0),
    ([{"type": "delay", "seconds": 10}], 2, "transient", 1.0),
    ([{"type": "reply", "text": "not json at all"}], 2, "invalid_output", 1.0),
    ([{"type": "reply", "text": "{\"title\": \"only a title\"}"}], 2, "invalid_output", 1.0),
], ids=["429-retry-after", "500-twice", "503", "timeout", "broken-json", "schema-violation"])
def test_transient_faults_are_retried_then_the_job_completes(stack, llmock, behaviors, attempts,
                                                            error_class, min_gap):
    llmock.script(*behaviors)  # the first calls are the story bible's
    job_id = stack.generate(idea="Storm over the salt flats", total_segments=2, segments_per_set=1)
    job = stack.wait_job(job_id)
    assert job["state"] == "completed", job["result"]
    history = job["result"]["story_bible"]["attempt_history"]
    assert len(history) == attempts
    assert all(a["error_class"] == error_class for a in history[:-1])
    assert history[-1]["outcome"] == "success"
    gap = parse_timestamp(history[1]["started_at"]) - parse_timestamp(history[0]["finished_at"])
    assert gap >= min_gap - 0.05
    assert history[0]["delay_s"] >= min_gap
    if behaviors[0]["type"] == "delay":  # a call that timed out: its usage is unknown, not zero
        assert history[0]["token_usage"] is None


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_permanent_errors_fail_at_once_without_backoff(make_stack, llmock, status):
    # A backoff of 30 s: a job that waited even once would not have ended within the wait below.
    stack = make_stack(**openai_env(llmock, RETRY_BACKOFF_BASE="30"))
    llmock.script({"type": "fail", "status": status, "times": None})
    job_id = stack.generate(idea="Denied", total_segments=4, segments_per_set=2, max_retries=3)
    job = stack.wait_job(job_id, timeout=25)
    assert job["state"] == "failed"
    result = job["result"]
    assert result["story_bible"]["attempts"] == 1
    assert "delay_s" not in result["story_bible"]["attempt_history"][0]  # no retry was planned
    assert f"HTTP {status}" in result["error"]
    assert all(s["status"] == "failed" and f"HTTP {status}" in s["error"] for s in result["sets"])


def test_401_on_the_sets_fails_each_set_after_one_attempt(make_stack, llmock):
    # The bible's call is held 3 s at the model server; the key is revoked while it is held, so
    # every call after the bible's is refused, however fast the worker is.
    stack = make_stack(**openai_env(llmock, RETRY_BACKOFF_BASE="2", OPENAI_TIMEOUT_S="20"))
    llmock.hold(3)
    job_id = stack.generate(idea="Revoked key", total_segments=2, segments_per_set=1, max_retries=3)
    llmock.wait_held("the bible's model call")
    llmock.script({"type": "fail", "status": 401, "times": None})
    job = stack.wait_job(job_id)
    assert job["state"] == "failed"
    for entry in job["result"]["sets"]:
        assert entry["attempts"] == 1
        assert "HTTP 401" in entry["error"]
        assert "delay_s" not in entry["attempt_history"][0]


def test_retry_after_the_bible_failed_writes_the_bible_and_every_set(make_stack, llmock):
    stack = make_stack(**openai_env(llmock))
    llmock.script({"type": "fail", "status": 401, "times": 1})
    job_id = stack.generate(idea="Second chance", total_segments=2, segments_per_set=1)
    assert stack.wait_job(job_id)["state"] == "failed"
    response = stack.post("/retry-failed-story-sets", json={"job_id": job_id, "wait": 60})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "completed"
    result = body["result"]
    assert result["story_bible"]["status"] == "success"
    assert [r["set_number"] for r in result["retry_info"]["retry_results"]] == [1, 2]
    assert all((stack.output_root / s["file_path"]).exists() for s in result["sets"])
