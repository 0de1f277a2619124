"""The openai provider through the official client against llmock, an OpenAI-compatible server."""

from __future__ import annotations

import json

import pytest

from .conftest import openai_env
from .servers import wait_until

OFFLINE_SET = {"segments": [{
    "segment_number": 1, "location": "sonar room", "time_of_day": "night", "characters": ["mara", "kofi"],
    "action": "Mara hears the song and calls the captain.", "visual_prompt": "a dark sonar room, green screens",
    "camera": "close-up", "dialogue": [{"character": "mara", "line": "Listen."}],
    "narration": "The deep answers.", "mood": "dread", "duration_seconds": 5}]}
BIBLE = {
    "title": "Signal From The Deep", "logline": "A sonar operator hears a song from the trench.",
    "tone": "tense sci-fi",
    "characters": [
        {"id": "ada", "name": "Ada", "role": "protagonist", "visual_description": "thirties, red parka, black bob"},
        {"id": "kofi", "name": "Kofi", "role": "captain", "visual_description": "sixties, grey beard, navy cap"}],
    "locations": [{"name": "sonar room", "description": "dark, green screens"}],
    "set_synopses": [{"summary": f"the descent, part {n}", "ends_with": f"end of part {n}"} for n in (1, 2, 3)],
}


@pytest.fixture(scope="module")
def stack(make_stack, llmock):
    return make_stack(**openai_env(llmock, OPENAI_MAX_TOKENS="4000"))


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
    # the worker asked llmock's GET /v1/models, which names no context size
    assert result["output_mode"] == ("json_schema (context size not reported by the server; "
                                     "OPENAI_CONTEXT_TOKENS sets it)")
    for entry in result["sets"]:  # usage per set and per attempt
        assert entry["token_usage"]["completion_tokens"] > 0
        assert entry["attempt_history"][-1]["token_usage"] == entry["token_usage"]


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


def test_a_300_set_job_writes_its_outline_in_batches(stack, llmock):
    job_id = stack.generate(idea="A song from the ocean floor", total_segments=300, segments_per_set=1,
                            save_to_files=False)
    wait_until(lambda: stack.store.get(job_id)["state"] not in ("queued", "outlining"), 60, "the outline")
    assert stack.post(f"/jobs/{job_id}/cancel").status_code == 200
    synopses = stack.get(f"/jobs/{job_id}/script").json()["set_synopses"]
    assert [s["set_number"] for s in synopses] == list(range(1, 301))
    names = [(c.get("body") or {}).get("response_format", {}).get("json_schema", {}).get("name")
             for c in llmock.chat_requests()]
    assert [n for n in names if n and not n.startswith("story_set_")] == [
        "story_bible", *(f"story_synopses_{first}" for first in (29, 81, 133, 185, 237, 289))]


def test_a_validation_error_is_quoted_in_the_next_attempt(stack, llmock):
    bible = {**BIBLE, "set_synopses": BIBLE["set_synopses"][:1]}
    bad_set = json.loads(json.dumps(OFFLINE_SET).replace('"mara"', '"lysanna"'))
    llmock.script({"type": "reply", "text": json.dumps(bible)}, {"type": "reply", "text": json.dumps(bad_set)})
    job = stack.wait_job(stack.generate(idea="A song from the ocean floor", total_segments=1,
                                        segments_per_set=1, save_to_files=False))
    assert job["state"] == "completed", job
    [attempt_1, attempt_2] = job["result"]["sets"][0]["attempt_history"]
    assert "character id 'lysanna' is not in the roster: use one of 'ada', 'kofi'" in attempt_1["error"]
    third = llmock.chat_requests()[2]["body"]["messages"][-1]["content"]
    assert f"Your previous answer to this request was rejected: {attempt_1['error']}" in third


def test_a_spent_quota_stops_the_job_after_one_call(stack, llmock):
    llmock.script({"type": "fail", "status": 429, "code": "insufficient_quota", "times": None,
                   "message": "You exceeded your current quota"})
    job = stack.wait_job(stack.generate(idea="A song from the ocean floor", total_segments=3,
                                        segments_per_set=1, max_retries=3))
    assert job["state"] in ("failed", "partial")
    assert job["result"]["story_bible"]["attempt_history"][0]["error_class"] == "quota"
    assert len(llmock.chat_requests()) == 1


def test_failed_replies_keep_their_usage_on_their_attempts(stack, llmock):
    """A reply that fails validation was paid for: its attempt records the usage the server reported."""
    one_set = {**BIBLE, "set_synopses": BIBLE["set_synopses"][:1]}
    copied = {**one_set, "locations": [{"name": "sonar room", "description": "dark, green screens"}] * 3}
    lina = json.loads(json.dumps(OFFLINE_SET).replace('"sonar room"', '"Lina"').replace('"mara"', '"ada"'))
    llmock.script({"type": "reply", "text": json.dumps(copied)}, {"type": "reply", "text": json.dumps(one_set)},
                  {"type": "reply", "text": json.dumps(lina)})
    job = stack.wait_job(stack.generate(idea="A song from the ocean floor", total_segments=1,
                                        segments_per_set=1, max_retries=1, save_to_files=False))
    result = job["result"]
    bad_bible = result["story_bible"]["attempt_history"][0]
    assert "location name 'sonar room' is used 3 times" in bad_bible["error"]
    assert bad_bible["token_usage"]["completion_tokens"] > 0 and "unknown_calls" not in bad_bible["token_usage"]
    bad_set = result["sets"][0]["attempt_history"][0]
    assert "location 'Lina' is not one of the story bible's locations" in bad_set["error"]
    assert bad_set["token_usage"]["model_calls"] == 1 and bad_set["token_usage"]["completion_tokens"] > 0
    assert result["token_usage"]["model_calls"] == len(llmock.chat_requests())
