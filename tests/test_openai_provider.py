"""The openai provider through the official client against llmock, an OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest

from .conftest import openai_env

BIBLE = {
    "title": "Signal From The Deep", "logline": "A sonar operator hears a song from the trench.",
    "tone": "tense sci-fi",
    "characters": [
        {"id": "ada", "name": "Ada", "role": "protagonist", "visual_description": "red parka"},
        {"id": "kofi", "name": "Kofi", "role": "captain", "visual_description": "grey beard"}],
    "locations": [{"name": "sonar room", "description": "dark, green screens"}],
    "set_synopses": [{"summary": f"part {n}", "ends_with": f"end {n}"} for n in (1, 2, 3)],
}


@pytest.fixture(scope="module")
def stack(make_stack, llmock):
    return make_stack(**openai_env(llmock))


@pytest.fixture(autouse=True)
def fresh_llmock(llmock):
    llmock.reset()
    yield


def test_job_through_the_openai_client_completes(stack, llmock):
    job_id = stack.generate(idea="A song from the ocean floor", total_segments=3, segments_per_set=1)
    job = stack.wait_job(job_id)
    assert job["state"] == "completed", job
    result = job["result"]
    assert result["provider"] == "openai"
    assert result["generation_summary"]["total_segments_generated"] == 3
    calls = llmock.chat_requests()
    assert len(calls) == 4
    bodies = [c.get("body") or {} for c in calls]
    formats = [b.get("response_format", {}).get("json_schema", {}).get("name") for b in bodies]
    assert sorted(f for f in formats if f) == ["story_bible", "story_set_1", "story_set_2", "story_set_3"]
    assert result["token_usage"]["model_calls"] == 4
    assert result["token_usage"]["total_tokens"] > 0


def test_broken_reply_fails_one_set_and_the_others_complete(stack, llmock):
    llmock.script({"type": "reply", "text": json.dumps(BIBLE)},
                  {"type": "reply", "text": "{\"segments\": [ this is not json"})
    job_id = stack.generate(idea="A song from the ocean floor", total_segments=3, segments_per_set=1,
                            max_retries=0)
    job = stack.wait_job(job_id)
    assert job["state"] == "partial", job
    result = job["result"]
    assert result["story_title"] == "Signal From The Deep"
    assert result["generation_summary"]["successful_sets"] == 2
    [failed] = [s for s in result["sets"] if s["status"] == "failed"]
    assert result["generation_summary"]["failed_set_numbers"] == [failed["set_number"]]
    assert "not valid JSON" in failed["error"]


def test_reply_cut_off_by_the_token_limit_is_invalid(stack, llmock):
    llmock.script({"type": "reply", "text": json.dumps(BIBLE), "finish_reason": "length"})
    job_id = stack.generate(idea="A song from the ocean floor", total_segments=3, segments_per_set=1,
                            max_retries=0)
    job = stack.wait_job(job_id)
    assert job["state"] == "failed"
    assert "finish_reason=length" in job["result"]["error"]
    usage = job["result"]["token_usage"]
    assert usage["model_calls"] == 1 and usage["completion_tokens"] > 0  # a cut-off reply is paid for


def test_a_job_whose_outline_cannot_fit_one_reply_is_refused(stack):
    response = stack.post("/generate-movie-auto", json={"idea": "x", "total_segments": 1000,
                                                        "segments_per_set": 1})
    assert response.status_code == 400
    assert "at most 200 sets" in response.json()["errors"]["segments_per_set"][0]
    fits = stack.post("/generate-movie-auto", json={"idea": "x", "total_segments": 1000,
                                                    "segments_per_set": 5, "save_to_files": False})
    assert fits.status_code == 202
    assert stack.post(f"/jobs/{fits.json()['job_id']}/cancel").status_code == 200
