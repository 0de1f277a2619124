"""The pieces of the model layer that need no server: reply parsing, quota hints, feedback, settings, text rules."""

from __future__ import annotations

import pytest

from movie_gen.config.settings import Settings, SettingsError
from movie_gen.errors import InvalidModelOutput
from movie_gen.llm import prompts
from movie_gen.llm.feedback import validation_feedback
from movie_gen.llm.offline_writer import OfflineWriter
from movie_gen.llm.output_modes import parse_json_reply
from movie_gen.llm.quota import hinted_wait_s
from movie_gen.llm.writer import CallContext, add_usage
from movie_gen.story.segments import validate_segments
from movie_gen.story.story_bible import SetPlan, validate_bible
from movie_gen.story.text_rules import repeated_phrase


@pytest.mark.parametrize("text", [
    '{"a": 1}',
    '```json\n{"a": 1}\n```',
    'Sure! Here it is:\n```\n{"a": 1}\n```\nAnything else?',
    'The answer: {"a": 1} (as asked)',
])
def test_json_is_read_from_plain_text_and_code_fences(text):
    assert parse_json_reply(text) == {"a": 1}


def test_a_reply_without_json_names_its_start():
    with pytest.raises(InvalidModelOutput, match="not valid JSON.*reply starts 'I cannot"):
        parse_json_reply("I cannot write that story.")


@pytest.mark.parametrize("message, seconds", [
    ("Please try again in 20s.", 20), ("Please try again in 6m0.5s", 360.5),
    ("try again in 1h2m3s", 3723), ("try again in 2h", 7200), ("You exceeded your current quota", None),
])
def test_wait_hints_in_messages(message, seconds):
    assert hinted_wait_s(message) == seconds


def test_feedback_is_the_last_finished_attempts_validation_error():
    record = {"attempts": [
        {"outcome": "error", "error_class": "invalid_output", "error": "segment 2 is numbered 1"},
        {"outcome": "error", "error_class": "invalid_output", "error": "segment 12 is numbered 11"},
        {"started_at": "now"}]}  # the attempt that is starting
    assert validation_feedback(record) == "segment 12 is numbered 11"
    record["attempts"].insert(2, {"outcome": "error", "error_class": "transient", "error": "timed out"})
    assert validation_feedback(record) is None
    assert validation_feedback(None) is None


def test_usage_sums_and_stays_unknown_only_when_nothing_is_known():
    assert add_usage(None, None) is None
    assert add_usage({"prompt_tokens": 3, "model_calls": 1}, None) == {"prompt_tokens": 3, "model_calls": 1}
    assert add_usage({"prompt_tokens": 3, "model_calls": 1}, {"prompt_tokens": 2, "model_calls": 1}) == {
        "prompt_tokens": 5, "model_calls": 2}


@pytest.mark.parametrize("env, message", [
    ({"LLM_STRUCTURED_OUTPUT": "tools"}, "LLM_STRUCTURED_OUTPUT must be one of auto, json_schema"),
    ({"OPENAI_TOKEN_PARAM": "tokens"}, "OPENAI_TOKEN_PARAM must be one of"),
    ({"OPENAI_TEMPERATURE": "3"}, "OPENAI_TEMPERATURE must be between 0.0 and 2.0"),
    ({"QUOTA_RETRY_AFTER_S": "0"}, "QUOTA_RETRY_AFTER_S must be >= 1"),
])
def test_bad_model_settings_are_refused(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_model_settings_defaults():
    settings = Settings.from_env({})
    assert (settings.llm_structured_output, settings.openai_token_param, settings.openai_system_role) == (
        "auto", "auto", "auto")
    assert settings.openai_context_tokens == 0 and settings.openai_temperature is None
    assert settings.quota_retry_after_s == 3600


def test_repeated_phrases_are_found_and_ordinary_text_passes():
    assert repeated_phrase("a red coat and a red hat") is None
    assert repeated_phrase("long charcoal wool coat, " * 9) == ("long charcoal wool coat", 9)


def test_the_offline_writer_stays_within_the_bounds_with_a_long_idea():
    idea = " ".join(f"word{n}" for n in range(700))  # about 4000 characters
    offline = OfflineWriter(Settings())
    bible = validate_bible(offline.write_bible(idea, 2, 4, CallContext("j")).data, 2)
    plan = SetPlan(2, 3, 4)
    validate_segments(offline.write_set(idea, bible, plan, CallContext("j", 2)).data, plan,
                      [c["id"] for c in bible["characters"]])


def test_a_set_prompt_carries_only_its_own_and_the_neighbouring_synopses():
    offline = OfflineWriter(Settings())
    bible = validate_bible(offline.write_bible("idea", 300, 300, CallContext("j")).data, 300)
    for n, synopsis in enumerate(bible["set_synopses"], start=1):
        synopsis["summary"] = f"summary of set {n:03d}"
        synopsis["ends_with"] = f"ending of set {n:03d}"
    prompt = prompts.set_prompt("idea", bible, SetPlan(150, 150, 150))
    assert "summary of set 150" in prompt and "ending of set 150" in prompt
    assert "ending of set 149" in prompt and "summary of set 151" in prompt
    assert "set 001" not in prompt and "set 152" not in prompt and "summary of set 149" not in prompt
    small = prompts.set_prompt("idea", {**bible, "set_synopses": bible["set_synopses"][:3]}, SetPlan(2, 2, 2))
    assert abs(len(prompt) - len(small)) < 40  # the prompt does not grow with the job
