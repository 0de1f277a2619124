"""The openai writer against llmock: request shapes per mode, fallbacks on refused shapes, quota, usage."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

import pytest

from movie_gen.config.settings import Settings
from movie_gen.errors import (
    ContextOverflow,
    InvalidModelOutput,
    PermanentLLMError,
    QuotaExhausted,
    TransientLLMError,
)
from movie_gen.llm.offline_writer import OfflineWriter
from movie_gen.llm.openai_writer import OpenAIWriter
from movie_gen.llm.server_profile import PROFILES
from movie_gen.llm.writer import CallContext
from movie_gen.story.segments import validate_segments
from movie_gen.story.story_bible import SetPlan, validate_bible

from .conftest import openai_env

PLAN = SetPlan(1, 1, 1)
FORMAT_REFUSED_500 = {"type": "fail", "status": 500, "message": (
    "1 validation error for CreateChatCompletionRequest\nresponse_format.type\n"
    "  Input should be 'text' or 'json_object' [type=literal_error, input_value='json_schema']")}


@pytest.fixture(autouse=True)
def fresh(llmock):
    llmock.reset()
    PROFILES.clear()
    yield
    PROFILES.clear()


def make_writer(llmock, **env: str) -> OpenAIWriter:
    return OpenAIWriter(Settings.from_env(openai_env(llmock, **env)))


@pytest.fixture(scope="module")
def bible() -> dict:
    offline = OfflineWriter(Settings())
    return validate_bible(offline.write_bible("A song from the ocean floor", 2, 2, CallContext("j")).data, 2)


def valid_set_json(bible: dict, plan: SetPlan = PLAN) -> str:
    return json.dumps(OfflineWriter(Settings()).write_set("idea", bible, plan, CallContext("j", 1)).data)


def bodies(llmock) -> list[dict]:
    return [r["body"] for r in llmock.chat_requests()]


def user_text(body: dict) -> str:
    return body["messages"][-1]["content"]


def write_set(writer: OpenAIWriter, bible: dict, feedback: str | None = None):
    reply = writer.write_set("A song from the ocean floor", bible, PLAN, CallContext("j", 1, 1, feedback))
    validate_segments(reply.data, PLAN, [c["id"] for c in bible["characters"]])
    return reply


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "prompt"])
def test_each_mode_sends_its_request_shape(llmock, bible, mode):
    if mode == "prompt":  # llmock answers free text without a response_format: script the reply
        llmock.script({"type": "reply", "text": valid_set_json(bible)})
    reply = write_set(make_writer(llmock, LLM_STRUCTURED_OUTPUT=mode), bible)
    assert reply.mode == mode
    [body] = bodies(llmock)
    fmt = body.get("response_format")
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["max_completion_tokens"] == body["max_tokens"] == 16000
    assert "temperature" not in body and "top_p" not in body
    if mode == "json_schema":
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        assert fmt["json_schema"]["schema"]["properties"]["segments"]["minItems"] == 1
        assert "JSON schema" not in user_text(body)
    elif mode == "json_object":
        assert fmt["type"] == "json_object" and "segments" in fmt["schema"]["properties"]
        assert "maxLength" not in json.dumps(fmt) and "minLength" in json.dumps(fmt)  # see docs/models.md
        assert "valid against this JSON schema" in user_text(body)
    else:
        assert fmt is None
        assert "valid against this JSON schema" in user_text(body) and "```json" in user_text(body)


@pytest.mark.parametrize("fault", [
    {"type": "fail", "status": 400, "message": "response_format json_schema is not supported"},
    {"type": "fail", "status": 422, "message": "Unprocessable entity."},
    FORMAT_REFUSED_500,
], ids=["400", "422", "500-naming-response-format"])
def test_a_refused_response_format_falls_back_once_and_is_remembered(llmock, bible, caplog, fault):
    writer = make_writer(llmock)
    llmock.script(fault)
    with caplog.at_level(logging.WARNING, logger="movie_gen.llm.server_profile"):
        first = write_set(writer, bible)
        second = write_set(writer, bible)
    assert first.mode == second.mode == "json_object"
    sent = [b.get("response_format", {}).get("type") for b in bodies(llmock)]
    assert sent == ["json_schema", "json_object", "json_object"]  # one extra request, then remembered
    warnings = [r for r in caplog.records if "refused response_format" in r.getMessage()]
    assert len(warnings) == 1 and "output mode json_object" in warnings[0].getMessage()


def test_a_shape_refused_again_after_the_fallback_is_permanent(llmock, bible):
    llmock.script({"type": "fail", "status": 400, "times": None})
    with pytest.raises(PermanentLLMError, match="refused the request shape .* HTTP 400"):
        write_set(make_writer(llmock), bible)
    assert len(bodies(llmock)) == 2


@pytest.mark.parametrize("env, fault, error", [
    ({}, {"type": "fail", "status": 500}, TransientLLMError),
    ({"LLM_STRUCTURED_OUTPUT": "json_schema"}, FORMAT_REFUSED_500, PermanentLLMError),
    ({"LLM_STRUCTURED_OUTPUT": "prompt"}, {"type": "fail", "status": 400}, PermanentLLMError),
], ids=["plain-500-is-transient", "fixed-mode-no-fallback", "prompt-mode-400"])
def test_no_fallback_without_a_next_shape_or_a_shape_refusal(llmock, bible, env, fault, error):
    llmock.script(fault)
    with pytest.raises(error):
        write_set(make_writer(llmock, **env), bible)
    assert len(bodies(llmock)) == 1


@pytest.mark.parametrize("message, check", [
    ("Unsupported parameter: 'max_tokens' is not supported with this model. "
     "Use 'max_completion_tokens' instead.",
     lambda b: "max_tokens" not in b and b["max_completion_tokens"] == 16000),
    ("System role not supported",
     lambda b: [m["role"] for m in b["messages"]] == ["user"]
     and b["messages"][0]["content"].startswith("You are a screenwriter")),
    ("Invalid schema for response_format 'story_set_1': In context=('properties', 'action'), "
     "'maxLength' is not permitted.",
     lambda b: b["response_format"]["type"] == "json_schema" and "maxLength" not in json.dumps(b)),
], ids=["token-parameter", "system-role", "schema-keywords"])
def test_other_refused_features_fall_back_and_keep_the_output_mode(llmock, bible, message, check):
    llmock.script({"type": "fail", "status": 400, "message": message})
    reply = make_writer(llmock).write_set("idea", bible, PLAN, CallContext("j", 1))
    assert reply.mode == "json_schema"
    refused, accepted = bodies(llmock)
    assert check(accepted) and not check(refused)


@pytest.mark.parametrize("mode", ["prompt", "json_object"])
def test_a_reply_in_a_code_fence_is_read(llmock, bible, mode):
    llmock.script({"type": "reply", "text": f"Here is the set:\n```json\n{valid_set_json(bible)}\n```\nEnjoy."})
    assert write_set(make_writer(llmock, LLM_STRUCTURED_OUTPUT=mode), bible).data["segments"]


def test_the_previous_validation_error_is_quoted_in_the_prompt(llmock, bible):
    error = "segment 1: character id 'lysanna' is not in the roster: use one of 'mara'"
    write_set(make_writer(llmock), bible, feedback=error)
    [body] = bodies(llmock)
    assert f"Your previous answer to this request was rejected: {error}" in user_text(body)


def test_request_parameters_follow_the_settings(llmock, bible):
    writer = make_writer(llmock, OPENAI_CONTEXT_TOKENS="9000", OPENAI_TOKEN_PARAM="max_tokens",
                         OPENAI_SYSTEM_ROLE="user", OPENAI_TEMPERATURE="0.7", OPENAI_TOP_P="0.9")
    write_set(writer, bible)
    [body] = bodies(llmock)
    assert "max_completion_tokens" not in body and 6000 < body["max_tokens"] < 9000
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert (body["temperature"], body["top_p"]) == (0.7, 0.9)


def test_a_prompt_that_leaves_no_room_in_the_context_is_refused_before_any_call(llmock, bible):
    with pytest.raises(ContextOverflow, match=r"context of 1000 tokens \(OPENAI_CONTEXT_TOKENS\)"):
        write_set(make_writer(llmock, OPENAI_CONTEXT_TOKENS="1000"), bible)
    assert bodies(llmock) == []


@pytest.mark.parametrize("fault, wait_s", [
    ({"status": 429, "code": "insufficient_quota", "message": "You exceeded your current quota"}, 5400),
    ({"status": 429, "code": "insufficient_quota", "retry_after": 7200,
      "message": "You exceeded your current quota"}, 7200),
    ({"status": 429, "message": "You exceeded your current quota, please check your plan and billing "
                                "details. Please try again in 2h0m0s."}, 7200),
    ({"status": 402, "message": "Payment required."}, 5400),
], ids=["insufficient-quota", "retry-after-hint", "message-hint", "402"])
def test_a_spent_quota_raises_quota_exhausted_at_once(llmock, bible, fault, wait_s):
    llmock.script({"type": "fail", "times": None, **fault})
    writer = make_writer(llmock, QUOTA_RETRY_AFTER_S="5400")
    before = datetime.now(timezone.utc).timestamp()
    with pytest.raises(QuotaExhausted) as caught:
        write_set(writer, bible)
    error = caught.value
    assert not isinstance(error, (TransientLLMError, InvalidModelOutput))  # not retried by the pipeline
    assert error.kind == "quota" and error.retry_after_s == wait_s
    assert before + wait_s - 1 <= error.not_before.timestamp() <= before + wait_s + 60
    assert error.not_before_iso.endswith("Z")
    assert len(bodies(llmock)) == 1  # no fallback, no retry inside the writer


def test_a_rate_limit_429_stays_transient(llmock, bible):
    llmock.script({"type": "fail", "status": 429, "retry_after": 2,
                   "message": "Rate limit reached for requests per min. Please try again in 2s."})
    with pytest.raises(TransientLLMError) as caught:
        write_set(make_writer(llmock), bible)
    assert caught.value.retry_after_s == 2


def test_usage_on_the_reply_and_on_errors(llmock, bible):
    writer = make_writer(llmock, OPENAI_TIMEOUT_S="0.5")
    reply = write_set(writer, bible)
    assert reply.usage["model_calls"] == 1 and reply.usage["completion_tokens"] > 0
    llmock.script({"type": "reply", "text": "{\"segments\": [ not json"})
    with pytest.raises(InvalidModelOutput) as invalid:
        write_set(writer, bible)
    assert invalid.value.usage["model_calls"] == 1 and invalid.value.usage["completion_tokens"] > 0
    llmock.script({"type": "delay", "seconds": 3})
    with pytest.raises(TransientLLMError, match="timed out") as timed_out:
        write_set(writer, bible)
    assert timed_out.value.usage is None  # unknown: the server never said


def test_a_300_set_outline_is_written_in_batches_that_fit_one_reply(llmock):
    writer = make_writer(llmock, OPENAI_MAX_TOKENS="4000")
    paced = []  # the global rate limit is taken before every call after the attempt's first
    reply = writer.write_bible("A song from the ocean floor", 300, 300,
                               CallContext("j", pace=lambda: paced.append(len(bodies(llmock)))))
    assert paced == [1, 2, 3, 4, 5, 6]
    bible = validate_bible(reply.data, 300)
    assert [s["set_number"] for s in bible["set_synopses"]] == list(range(1, 301))
    sent = bodies(llmock)
    counts = [b["response_format"]["json_schema"]["schema"]["properties"]["set_synopses"]["minItems"]
              for b in sent]
    assert counts == [28, 52, 52, 52, 52, 52, 12]  # (4000 − 2000) / 70, then (4000 − 300) / 70
    assert reply.usage["model_calls"] == 7
    second = user_text(sent[1])
    assert "Set 28 is:" in second and "sets 29 to 80" in second  # each batch sees the last synopsis


def test_a_batch_that_times_out_keeps_the_usage_of_the_batches_before(llmock):
    writer = make_writer(llmock, OPENAI_MAX_TOKENS="4000", OPENAI_TIMEOUT_S="0.5")
    llmock.script({"type": "delay", "seconds": 0, "times": 1}, {"type": "delay", "seconds": 3})
    with pytest.raises(TransientLLMError) as caught:
        writer.write_bible("idea", 100, 100, CallContext("j"))
    assert caught.value.usage["model_calls"] == 1 and caught.value.usage["unknown_calls"] == 1
