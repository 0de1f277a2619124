"""Small unit tests of the story domain, files, retry policy, error mapping and job store."""

from __future__ import annotations

import json
import os

import fakeredis
import httpx
import openai
import pytest

from movie_gen.errors import InvalidModelOutput, PermanentLLMError, TransientLLMError
from movie_gen.files import UnsafePath, check_relative_dir, reserve_stem, resolve_under, write_json_atomic
from movie_gen.job_store import JobStore
from movie_gen.llm.client_errors import classify
from movie_gen.llm.offline_writer import OfflineWriter
from movie_gen.llm.writer import CallContext
from movie_gen.retry_policy import backoff_delay
from movie_gen.segments import validate_segments
from movie_gen.settings import Settings, SettingsError
from movie_gen.story_bible import SetPlan, plan_sets, validate_bible


@pytest.mark.parametrize("total, per_set, sizes", [
    (30, 10, [10, 10, 10]), (25, 10, [10, 10, 5]), (1, 50, [1]), (7, 3, [3, 3, 1]), (1000, 50, [50] * 20)])
def test_plan_sets(total, per_set, sizes):
    plans = plan_sets(total, per_set)
    assert [p.count for p in plans] == sizes
    assert plans[0].first == 1 and plans[-1].last == total
    assert all(b.first == a.last + 1 for a, b in zip(plans, plans[1:]))


@pytest.fixture
def offline():
    return OfflineWriter(Settings())


def test_offline_writer_passes_validation_and_weaves_the_idea(offline):
    bible = validate_bible(offline.write_bible("a robot learns to paint", 2, 6, CallContext("j")).data, 2)
    assert bible["title"] == "A Robot Learns To Paint"
    ids = [c["id"] for c in bible["characters"]]
    segments = validate_segments(offline.write_set("a robot learns to paint", bible, SetPlan(2, 4, 6),
                                                   CallContext("j", 2)).data, SetPlan(2, 4, 6), ids)
    assert [s["segment_number"] for s in segments] == [4, 5, 6]
    assert "a robot learns to paint" in segments[0]["dialogue"][0]["line"]


def _segments(offline):
    bible = validate_bible(offline.write_bible("idea", 1, 3, CallContext("j")).data, 1)
    data = offline.write_set("idea", bible, SetPlan(1, 1, 3), CallContext("j", 1)).data
    return bible, data


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d["segments"].pop(), r"expected 3 segments \(1 to 3\), got 2"),
    (lambda d: d["segments"][1].update(segment_number=7), "segment 2 is numbered 7"),
    (lambda d: d["segments"][0].update(characters=["ghost"]),
     "segment 1: character id 'ghost' is not in the roster: use one of '"),
    (lambda d: d["segments"][0].update(characters=d["segments"][0]["characters"][:1] * 2),
     "is listed twice in 'characters'"),
    (lambda d: d["segments"][0]["dialogue"][0].update(character="ghost"),
     "segment 1 dialogue 1: character id 'ghost' is not in the roster"),
    (lambda d: d["segments"][2].pop("visual_prompt"), "'visual_prompt' must be a non-empty string, got None"),
    (lambda d: d["segments"][0].update(action="1"), "'action' must be 10 to 1200 characters, got 1: '1'"),
    (lambda d: d["segments"][0].update(narration="x" * 701), "'narration' must be 1 to 700 characters, got 701"),
    (lambda d: d["segments"][0].update(action="the wind is cold " * 5),
     "'action' repeats the phrase 'the wind is cold' 5 times"),
    (lambda d: d["segments"][0].update(time_of_day="teatime"), "time_of_day 'teatime'"),
    (lambda d: d["segments"][0].update(duration_seconds="5"), "duration_seconds must be an integer from 1 to 120, got '5'"),
    (lambda d: d.pop("segments"), "'segments' list"),
], ids=["count", "numbering", "roster", "twice", "dialogue-roster", "missing", "too-short", "too-long",
        "repeated-phrase", "time-of-day", "duration", "no-segments"])
def test_invalid_sets_are_rejected(offline, mutate, message):
    bible, data = _segments(offline)
    mutate(data)
    with pytest.raises(InvalidModelOutput, match=message):
        validate_segments(data, SetPlan(1, 1, 3), [c["id"] for c in bible["characters"]])


def test_invalid_bible_is_rejected(offline):
    data = offline.write_bible("idea", 3, 3, CallContext("j")).data
    with pytest.raises(InvalidModelOutput, match="expected 4 set synopses"):
        validate_bible(data, 4)
    data["characters"].append(dict(data["characters"][0]))
    with pytest.raises(InvalidModelOutput, match=r"character id '\w+' is used twice \(characters 1 and 5\)"):
        validate_bible(data, 3)
    data["characters"][4]["id"] = "Two Words"
    with pytest.raises(InvalidModelOutput, match="character 5 id 'two words' must be lowercase letters"):
        validate_bible(data, 3)
    data["characters"].pop()
    data["characters"][0]["visual_description"] = "red coat, " * 200
    with pytest.raises(InvalidModelOutput, match="'visual_description' must be 20 to 900 characters, got 1999"):
        validate_bible(data, 3)


def test_offline_faults_are_seeded_and_configurable():
    writer = OfflineWriter(Settings(offline_fail_sets=frozenset({2}), offline_fail_rate=0.5))
    with pytest.raises(TransientLLMError, match="OFFLINE_FAIL_SETS"):
        writer.write_set("i", {}, SetPlan(2, 1, 1), CallContext("j", 2))

    def outcomes():
        result = []
        for attempt in range(1, 41):
            try:
                writer._call_faults(CallContext("job", 1, attempt))
                result.append(True)
            except TransientLLMError:
                result.append(False)
        return result
    first = outcomes()
    assert first == outcomes() and 8 < first.count(False) < 32


@pytest.mark.parametrize("retries, expected", [(0, 2), (1, 4), (2, 8), (9, 1024)])
def test_backoff_doubles_from_the_base_without_the_600s_cap(retries, expected):
    assert backoff_delay(Settings(), retries) == expected


def test_backoff_honours_retry_after_and_jitter():
    assert backoff_delay(Settings(), 0, TransientLLMError("429", retry_after_s=7.5)) == 7.5
    capped = backoff_delay(Settings(), 0, TransientLLMError("429", retry_after_s=86400))
    assert capped == Settings().retry_backoff_max
    jittered = [backoff_delay(Settings(retry_jitter=True), 2) for _ in range(50)]
    assert all(0 <= d <= 8 for d in jittered) and len(set(jittered)) > 1


def _status_error(status: int, headers: dict | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://llm/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request, json={"error": {}})
    return openai.APIStatusError(f"HTTP {status}", response=response, body=None)


@pytest.mark.parametrize("exc, kind", [
    (_status_error(400), PermanentLLMError), (_status_error(401), PermanentLLMError),
    (_status_error(403), PermanentLLMError), (_status_error(404), PermanentLLMError),
    (_status_error(408), TransientLLMError), (_status_error(409), TransientLLMError),
    (_status_error(429), TransientLLMError), (_status_error(500), TransientLLMError),
    (_status_error(503), TransientLLMError),
    (openai.APITimeoutError(httpx.Request("POST", "http://llm")), TransientLLMError),
    (openai.APIConnectionError(request=httpx.Request("POST", "http://llm")), TransientLLMError),
    (json.JSONDecodeError("Expecting value", "<html>", 0), TransientLLMError),
])
def test_error_classes(exc, kind):
    assert type(classify(exc)) is kind


def test_retry_after_headers_are_read():
    assert classify(_status_error(429, {"retry-after": "3"})).retry_after_s == 3.0
    assert classify(_status_error(429, {"retry-after-ms": "1500"})).retry_after_s == 1.5


@pytest.mark.parametrize("raw", ["../x", "/etc", "a/../../b", "", ".git", "a\\b", "x" * 201])
def test_unsafe_directories(raw):
    with pytest.raises(UnsafePath):
        check_relative_dir(raw)


def test_safe_directories_are_normalised(tmp_path):
    assert check_relative_dir("./a//b/") == "a/b"
    assert resolve_under(tmp_path, "a/b") == tmp_path.resolve() / "a" / "b"
    os.symlink("/etc", tmp_path / "link")
    with pytest.raises(UnsafePath, match="outside OUTPUT_ROOT"):
        resolve_under(tmp_path, "link")


def test_atomic_write_leaves_no_temp_files(tmp_path):
    target = tmp_path / "d" / "f.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


def test_reserve_stem_never_reuses_another_jobs_name(tmp_path):
    assert reserve_stem(tmp_path, "My Film!", {"job_id": "a"}, "a") == "My_Film"
    assert reserve_stem(tmp_path, "My Film?", {"job_id": "b"}, "b") == "My_Film_2"
    assert reserve_stem(tmp_path, "My Film", {"job_id": "a"}, "a") == "My_Film"  # redelivery


def test_job_store_roundtrip_with_ttl():
    store = JobStore(fakeredis.FakeRedis(decode_responses=True), ttl_s=100)
    store.create("j1", {"idea": "x"}, [{"set_number": 1, "first_segment": 1, "last_segment": 2}], "offline")
    store.add_usage("j1", {"prompt_tokens": 3, "completion_tokens": 4})
    job = store.get("j1")
    assert job["state"] == "queued" and job["sets"][0]["status"] == "pending"
    assert job["tokens_prompt"] == 3 and job["llm_calls"] == 1
    assert 0 < store.redis.ttl(store.key("j1")) <= 100
    assert store.acquire_lock("j1", "retry", 10) and not store.acquire_lock("j1", "retry", 10)


@pytest.mark.parametrize("env, message", [
    ({"LLM_PROVIDER": "magic"}, "LLM_PROVIDER"), ({"OFFLINE_FAIL_RATE": "2"}, "OFFLINE_FAIL_RATE"),
    ({"OFFLINE_FAIL_SETS": "a,b"}, "OFFLINE_FAIL_SETS"), ({"RETRY_JITTER": "perhaps"}, "RETRY_JITTER"),
    ({"JOB_TTL_S": "x"}, "JOB_TTL_S"),
])
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_provider_defaults_to_openai_only_with_a_key():
    assert Settings.from_env({}).llm_provider == "offline"
    assert Settings.from_env({"OPENAI_API_KEY": "sk"}).llm_provider == "openai"


def test_json_log_lines_carry_job_and_set():
    import logging

    from movie_gen.logging_setup import make_formatter

    record = logging.LogRecord("movie_gen.attempts", logging.INFO, __file__, 1, "attempt %s", (2,), None)
    record.job_id, record.set_number, record.attempt, record.delay_s = "j1", 3, 2, 4.0
    line = json.loads(make_formatter("json").format(record))
    assert line["message"] == "attempt 2"
    assert (line["job_id"], line["set_number"], line["attempt"], line["delay_s"]) == ("j1", 3, 2, 4.0)
    text = make_formatter("text").format(record)
    assert "job_id=j1 set_number=3 attempt=2 delay_s=4.0" in text


def test_celery_settings_for_flower_and_safe_redelivery():
    import celeryconfig

    assert celeryconfig.worker_send_task_events and celeryconfig.task_send_sent_event
    assert celeryconfig.task_acks_late and celeryconfig.task_reject_on_worker_lost
    assert celeryconfig.worker_prefetch_multiplier == 1
    longest_wait = Settings().retry_backoff_max
    visibility = celeryconfig.broker_transport_options["visibility_timeout"]
    assert visibility > celeryconfig.task_time_limit + longest_wait
    assert celeryconfig.result_backend_transport_options["visibility_timeout"] == visibility


def test_idempotency_claims_replays_conflicts_and_abandoned_claims(monkeypatch):
    from movie_gen import idempotency
    from movie_gen.idempotency import IdempotencyConflict, IdempotencyKeys

    keys = IdempotencyKeys(fakeredis.FakeRedis(decode_responses=True), ttl_s=60)
    assert keys.claim("o", "generate", "k", {"a": 1}, "job1") == ("job1", True)
    assert keys.claim("o", "generate", "k", {"a": 1}, "job2") == ("job1", False)
    assert keys.claim("other", "generate", "k", {"a": 1}, "job3") == ("job3", True)
    with pytest.raises(IdempotencyConflict):
        keys.claim("o", "generate", "k", {"a": 2}, "job4")
    # the first request died before its job existed: after a while the key is taken over
    monkeypatch.setattr(idempotency, "ABANDONED_AFTER_S", -1)
    assert keys.claim("o", "generate", "k", {"a": 1}, "job5", job_exists=lambda _: False) == ("job5", True)
    assert keys.claim("o", "generate", "k", {"a": 1}, "job6", job_exists=lambda _: True) == ("job5", False)
