"""Small unit tests of the story domain, files, retry policy, error mapping and job store."""

from __future__ import annotations

import json
import os

import fakeredis
import httpx
import openai
import pytest

from movie_gen.config.settings import Settings, SettingsError
from movie_gen.errors import InvalidModelOutput, PermanentLLMError, TransientLLMError
from movie_gen.llm.client_errors import classify
from movie_gen.llm.offline_writer import OfflineWriter
from movie_gen.llm.writer import CallContext
from movie_gen.storage.files import (
    UnsafePath,
    check_relative_dir,
    reserve_stem,
    resolve_under,
    write_json_atomic,
)
from movie_gen.storage.object_store import LocalStore
from movie_gen.store.job_store import JobStore
from movie_gen.story.segments import validate_segments
from movie_gen.story.story_bible import SetPlan, plan_sets, validate_bible


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


def test_units_declare_celerys_retry_policy():
    from movie_gen.errors import RETRYABLE, STORE_ERRORS
    from workers.tasks import generate_set, story_bible

    for task in (generate_set, story_bible):
        assert task.autoretry_for == (*RETRYABLE, *STORE_ERRORS) and task.max_retries == 10
        assert (task.retry_backoff, task.retry_backoff_max, task.retry_jitter) == (2, 3600, False)
        assert task.ignore_result and task.store_errors_even_if_ignored


@pytest.mark.parametrize("value", ["0.5", "0", "x"])
def test_backoff_base_is_a_whole_number_of_seconds(value):
    with pytest.raises(SettingsError, match="RETRY_BACKOFF_BASE"):
        Settings.from_env({"RETRY_BACKOFF_BASE": value})


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
    files = LocalStore(tmp_path)
    assert reserve_stem(files, "d", "My Film!", {"job_id": "a"}, "a") == "My_Film"
    assert reserve_stem(files, "d", "My Film?", {"job_id": "b"}, "b") == "My_Film_2"
    assert reserve_stem(files, "d", "My Film", {"job_id": "a"}, "a") == "My_Film"  # redelivery


@pytest.fixture
def store():
    return JobStore(fakeredis.FakeRedis(decode_responses=True), ttl_s=100)


def _new_job(store, job_id="j1", sets=2):
    plans = [{"set_number": n, "first_segment": n, "last_segment": n, "task_id": f"t{n}"}
             for n in range(1, sets + 1)]
    store.create(job_id, {"idea": "x", "total_segments": sets, "segments_per_set": 1}, plans,
                 "offline", bible_record={"task_id": "tb"})


def test_job_store_roundtrip_with_ttl(store):
    _new_job(store)
    store.add_usage("j1", {"prompt_tokens": 3, "completion_tokens": 4})
    job = store.get("j1")
    assert job["state"] == "queued" and [s["status"] for s in job["sets"]] == ["pending", "pending"]
    assert job["tokens_prompt"] == 3 and job["llm_calls"] == 1
    assert job["bible_record"]["task_id"] == "tb"
    assert all(0 < store.redis.ttl(key) <= 100 for key in store.keys("j1")[:2])


def test_only_the_owning_task_writes_a_unit_and_segments(store):
    _new_job(store)
    record = store.get_record("j1", 1)
    assert store.put_unit_if_owned("j1", 1, {**record, "status": "success"}, "t1", [{"n": 1}]) == 1
    assert store.put_unit_if_owned("j1", 1, {**record, "status": "failed"}, "stale") == 0
    assert store.get_record("j1", 1)["status"] == "success"
    assert store.all_segments("j1") == {1: [{"n": 1}]}
    store.redis.delete(store.key("j1"))  # Redis lost the job: a worker never writes half of one
    assert store.put_unit_if_owned("j1", 2, {**record, "status": "success"}, "t2") == 0


def test_unit_compare_and_set_and_one_run_per_retry(store):
    _new_job(store)
    record = store.get_record("j1", 2)
    assert not store.update_unit_if("j1", 2, ("running",), "failed")
    assert store.update_unit_if("j1", 2, ("pending",), "failed", record={**record, "error_message": "x"},
                                expected=record)
    assert not store.update_unit_if("j1", 2, ("failed",), "pending", expected=record)  # record changed
    store.finalize("j1", 1, "partial")
    assert store.begin_run("j1", 1, False, state="generating")
    assert not store.begin_run("j1", 1, False, state="generating")  # the second retry lost the race
    assert store.get("j1")["run"] == "2"


def test_job_pages_read_only_the_sets_shown(store):
    _new_job(store, sets=5)
    page = store.get_page("j1", 3, 2)
    assert [s["set_number"] for s in page["sets"]] == [3, 4]
    assert page["set_statuses"] == {n: "pending" for n in range(1, 6)}


def test_job_list_cursor_neither_repeats_nor_skips_when_jobs_arrive(store):
    for n in range(5):
        _new_job(store, f"a{n}", sets=1)
    first, cursor = store.list_jobs(None, None, 2, None)
    _new_job(store, "newer", sets=1)
    second, cursor = store.list_jobs(None, None, 2, cursor)
    third, cursor = store.list_jobs(None, None, 2, cursor)
    assert [r["job_id"] for r in first + second + third] == ["a4", "a3", "a2", "a1", "a0"]
    assert cursor is None


def test_rate_limit_hands_out_slots_in_a_moving_window():
    from movie_gen.llm.rate_limit import LLMRateLimiter

    limiter = LLMRateLimiter(fakeredis.FakeRedis(), "2/second")
    slots = [limiter.reserve() for _ in range(5)]
    starts = [s.at_ms - slots[0].at_ms for s in slots]
    assert starts[:2] == [0, starts[1]] and starts[1] < 50
    assert starts[2] >= 1000 and starts[3] >= 1000 and starts[4] >= 2000
    assert slots[4].wait_s >= 1.9


@pytest.mark.parametrize("env, message", [
    ({"LLM_PROVIDER": "magic"}, "LLM_PROVIDER"), ({"OFFLINE_FAIL_RATE": "2"}, "OFFLINE_FAIL_RATE"),
    ({"OFFLINE_FAIL_SETS": "a,b"}, "OFFLINE_FAIL_SETS"), ({"RETRY_JITTER": "perhaps"}, "RETRY_JITTER"),
    ({"JOB_TTL_S": "x"}, "JOB_TTL_S"), ({"MOVIE_GEN_PORT": "x"}, "MOVIE_GEN_PORT must be an integer, got 'x'"),
    ({"OPENAI_TIMEOUT_S": "0.05"}, "OPENAI_TIMEOUT_S must be >= 0.1, got 0.05"),
])
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_provider_defaults_to_openai_only_with_a_key():
    assert Settings.from_env({}).llm_provider == "offline"
    assert Settings.from_env({"OPENAI_API_KEY": "sk"}).llm_provider == "openai"


def test_json_log_lines_carry_job_and_set():
    import logging

    from movie_gen.config.logging_setup import make_formatter

    record = logging.LogRecord("movie_gen.execution.attempts", logging.INFO, __file__, 1, "attempt %s", (2,), None)
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
    from movie_gen.store import idempotency
    from movie_gen.store.idempotency import IdempotencyConflict, IdempotencyKeys

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


def test_two_concurrent_takeovers_of_an_abandoned_key_create_one_job(redis_server, monkeypatch):
    import threading

    import redis as redis_lib

    from movie_gen.store import idempotency
    from movie_gen.store.idempotency import IdempotencyKeys

    client = redis_lib.Redis.from_url(redis_server.url(61), decode_responses=True)
    client.flushdb()
    keys = IdempotencyKeys(client, ttl_s=60)
    assert keys.claim("o", "generate", "k", {"a": 1}, "dead")[1] is True
    monkeypatch.setattr(idempotency, "ABANDONED_AFTER_S", -1)
    both_read = threading.Barrier(2)

    def exists(job_id: str) -> bool:  # both requests have read the abandoned claim before either acts
        if job_id == "dead":
            both_read.wait(timeout=10)
            return False
        return True  # the winner's job

    results: list[tuple[str, bool]] = []
    threads = [threading.Thread(target=lambda n=n: results.append(
        keys.claim("o", "generate", "k", {"a": 1}, f"job{n}", job_exists=exists))) for n in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(fresh for _, fresh in results) == [False, True]
    assert len({job_id for job_id, _ in results}) == 1
    keys.release("o", "generate", "k", "someone-else")  # only the claim's owner may release it
    assert client.exists(keys._name("o", "generate", "k"))


def test_a_long_poll_sleeps_until_the_hub_hears_the_end(redis_server):
    import threading

    from movie_gen.api.event_hub import EventHub
    from movie_gen.api.long_polls import wait_for_final
    from movie_gen.services import Services

    services = Services(Settings(redis_url=redis_server.url(62)))
    store = services.store
    store.redis.flushdb()
    hub = EventHub(store, services.settings.redis_url)
    store.create("f" * 32, {"total_segments": 1}, [{"set_number": 1, "first_segment": 1,
                                                    "last_segment": 1, "task_id": "t"}], "offline")
    reads = []
    original = store.get_page
    store.get_page = lambda job_id, *page: reads.append(job_id) or original(job_id, *page)  # type: ignore[method-assign]
    assert wait_for_final(services, hub, "f" * 32, 2.5)["state"] == "queued"
    assert len(reads) == 2  # at the start and when the time is up; never while nothing is published
    reads.clear()
    timer = threading.Timer(0.5, lambda: store.set_state("f" * 32, "completed"))
    timer.start()
    assert wait_for_final(services, hub, "f" * 32, 30)["state"] == "completed"
    assert len(reads) == 2  # at the start, and once woken by the final message
    assert hub.subscribers() == 0


def test_file_errors_do_not_show_the_servers_paths(tmp_path):
    (tmp_path / "taken").write_text("a file where a directory should be")
    with pytest.raises(OSError) as caught:
        write_json_atomic(tmp_path / "taken" / "sub" / "x.json", {"a": 1})
    assert str(tmp_path) not in str(caught.value) and caught.value.errno is not None
