"""API keys and tenants, request limits, idempotency, cancel, the job list and the assembled script."""

from __future__ import annotations

import pytest
import requests

from .conftest import openai_env

KEY_A, KEY_B = "key-alpha-0123456789", "key-bravo-9876543210"
A = {"Authorization": f"Bearer {KEY_A}"}
B = {"Authorization": f"Bearer {KEY_B}"}
IDEA = {"idea": "A cartographer maps a city that moves at night", "total_segments": 4,
        "segments_per_set": 2}


@pytest.fixture(scope="module")
def keyed(make_stack):
    return make_stack(MOVIE_GEN_API_KEYS=f"{KEY_A},{KEY_B}", API_RATE_LIMIT="1000/minute",
                      AUTH_FAILURE_LIMIT="1000/minute")


@pytest.fixture(scope="module")
def job_of_a(keyed):
    response = keyed.post("/generate-movie-auto", json={**IDEA, "wait": 60}, headers=A)
    assert response.status_code == 200, response.text
    return response.json()["job_id"]


PROTECTED = [("post", "/generate-movie-auto"), ("get", "/jobs"), ("get", "/jobs/{job}"),
             ("post", "/jobs/{job}/cancel"), ("get", "/jobs/{job}/script"),
             ("post", "/retry-failed-story-sets")]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": f"Basic {KEY_A}"}, {"Authorization": "Bearer"},
                                     {"Authorization": f"Bearer {KEY_A}x"}],
                         ids=["no-key", "wrong-key", "wrong-scheme", "empty", "longer-key"])
@pytest.mark.parametrize("method, path", PROTECTED)
def test_every_endpoint_but_health_and_docs_needs_a_valid_key(keyed, job_of_a, headers, method, path):
    response = requests.request(method, keyed.base_url + path.format(job=job_of_a), headers=headers,
                                json={"job_id": job_of_a} if method == "post" else None, timeout=10)
    assert response.status_code == 401
    assert response.json()["code"] == 401 and response.headers["WWW-Authenticate"].lower() == "bearer"


@pytest.mark.parametrize("path", ["/healthz", "/docs", "/openapi.json", "/docs/assets/swagger-ui-bundle.js"])
def test_health_and_docs_are_public(keyed, path):
    assert keyed.get(path).status_code == 200


def test_one_key_cannot_see_anothers_jobs(keyed, job_of_a):
    assert keyed.get(f"/jobs/{job_of_a}", headers=A).status_code == 200
    for method, path in PROTECTED[2:]:
        response = requests.request(method, keyed.base_url + path.format(job=job_of_a), headers=B,
                                    json={"job_id": job_of_a} if method == "post" else None, timeout=10)
        assert response.status_code == 404, (method, path)
    listed_b = keyed.get("/jobs", headers=B).json()["jobs"]
    assert job_of_a not in {j["job_id"] for j in listed_b}
    assert job_of_a in {j["job_id"] for j in keyed.get("/jobs", headers=A).json()["jobs"]}


def test_keys_never_reach_the_logs(keyed, job_of_a, caplog):
    keyed.get(f"/jobs/{job_of_a}", headers=A)
    keyed.get("/jobs", headers={"Authorization": "Bearer not-a-real-key-42"})
    text = keyed.logs() + caplog.text
    assert KEY_A not in text and KEY_B not in text and "not-a-real-key-42" not in text


def test_idempotent_replay_returns_the_same_job(keyed):
    headers = {**A, "Idempotency-Key": "order-7781"}
    first = keyed.post("/generate-movie-auto", json=IDEA, headers=headers)
    second = keyed.post("/generate-movie-auto", json=IDEA, headers=headers)
    assert first.status_code == second.status_code == 202
    job_id = first.json()["job_id"]
    assert second.json()["job_id"] == job_id
    other = keyed.post("/generate-movie-auto", json={**IDEA, "total_segments": 6}, headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["message"]
    # the same key under another API key is another request
    third = keyed.post("/generate-movie-auto", json=IDEA, headers={**B, "Idempotency-Key": "order-7781"})
    assert third.status_code == 202 and third.json()["job_id"] != job_id
    keyed.wait_job(job_id, headers=A)
    calls = keyed.get(f"/jobs/{job_id}", headers=A).json()["result"]["token_usage"]["model_calls"]
    assert calls == 3  # one bible and two sets: the replay did no work
    listed = [j["job_id"] for j in keyed.get("/jobs", params={"limit": 100}, headers=A).json()["jobs"]]
    assert listed.count(job_id) == 1


@pytest.mark.parametrize("key", ["", "x" * 256])
def test_bad_idempotency_keys(keyed, key):
    response = keyed.post("/generate-movie-auto", json=IDEA, headers={**A, "Idempotency-Key": key})
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["errors"]


def test_post_rate_limit_per_key_answers_429_with_retry_after(make_stack):
    stack = make_stack(MOVIE_GEN_API_KEYS=f"{KEY_A},{KEY_B}", API_RATE_LIMIT="3/minute")
    responses = [stack.post("/generate-movie-auto", json={"idea": "x" * n}, headers=A)
                 for n in range(1, 5)]
    assert [r.status_code for r in responses] == [202, 202, 202, 429]
    assert "Retry-After" not in responses[0].headers  # a 202 is not a "come back later"
    assert responses[0].headers["X-RateLimit-Remaining"] == "2"
    assert "limit is 3 per 1 minute" in responses[3].json()["message"]
    limited = stack.post("/generate-movie-auto", json=IDEA, headers=A)
    assert limited.status_code == 429 and limited.json()["code"] == 429
    assert int(limited.headers["Retry-After"]) > 0
    assert stack.post("/generate-movie-auto", json=IDEA, headers=B).status_code == 202  # own budget
    assert stack.get("/jobs", headers=A).status_code == 200  # reads are not limited


def test_cancel_a_running_job_keeps_what_was_written_and_can_be_retried(make_stack, llmock):
    llmock.reset()
    stack = make_stack(concurrency=1, **openai_env(llmock, OPENAI_TIMEOUT_S="20"))
    # The bible's and set 1's calls are answered at once; set 2's call is held 4 s at the model
    # server, and the job is cancelled while it is held.
    llmock.hold(4, after=2)
    job_id = stack.generate(idea="A long night shift", total_segments=6, segments_per_set=1)
    llmock.wait_held("set 2's model call")
    response = stack.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 200, response.text
    assert response.json()["state"] in ("cancelling", "cancelled")  # a running set may finish
    job = stack.wait_job(job_id)
    assert job["state"] == "cancelled"
    assert not any(s["status"] == "running" for s in job["result"]["sets"])  # final means stopped
    statuses = [s["status"] for s in job["result"]["sets"]]
    assert statuses[0] == "success" and statuses[1] in ("success", "cancelled"), statuses
    assert statuses[2:] == ["cancelled"] * 4  # no set after the cancel was started
    assert len(llmock.chat_requests()) == 3  # the bible, set 1 and set 2
    assert job["result"]["success"] is False and job["result"]["retry_info"]["can_retry"] is True
    assert job["progress"]["sets_cancelled"] == statuses.count("cancelled")
    written = sorted(p.name for p in (stack.output_root / "generated_movie_script").glob("*_set_*.json"))
    kept = sorted(e["file_path"].split("/")[-1] for e in job["result"]["sets"] if e["status"] == "success")
    assert written == kept  # every set that finished is kept with its file, none is lost
    assert all(e["segments_count"] == 1 for e in job["result"]["sets"] if e["status"] == "success")
    assert stack.post(f"/jobs/{job_id}/cancel").status_code == 409
    retry = stack.post("/retry-failed-story-sets", json={"job_id": job_id, "wait": 60})
    assert retry.status_code == 200, retry.text
    assert retry.json()["state"] == "completed"
    script = stack.get(f"/jobs/{job_id}/script").json()
    assert [s["segment_number"] for s in script["segments"]] == list(range(1, 7))


def test_job_list_pages_and_filters(make_stack):
    stack = make_stack(OFFLINE_FAIL_SETS="1")
    ids = [stack.generate(idea=f"Story {n}", total_segments=2, segments_per_set=1, max_retries=0)
           for n in range(5)]
    for job_id in ids:
        stack.wait_job(job_id)
    first = stack.get("/jobs", params={"limit": 2}).json()
    assert [j["job_id"] for j in first["jobs"]] == ids[::-1][:2]
    second = stack.get("/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = stack.get("/jobs", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    assert [j["job_id"] for j in second["jobs"] + third["jobs"]] == ids[::-1][2:]
    assert third["next_cursor"] is None
    assert {j["state"] for j in first["jobs"]} == {"partial"}
    assert stack.get("/jobs", params={"state": "completed"}).json()["jobs"] == []
    assert len(stack.get("/jobs", params={"state": "partial"}).json()["jobs"]) == 5
    assert first["jobs"][0]["status_url"] == f"/jobs/{ids[-1]}"
    for bad in ({"state": "nope"}, {"limit": 0}, {"limit": 101}, {"cursor": "abc"}):
        assert stack.get("/jobs", params=bad).status_code == 400


def test_script_assembles_bible_and_segments_in_order(offline_stack):
    job_id = offline_stack.generate(idea="A choir of lighthouses", total_segments=7, segments_per_set=3)
    offline_stack.wait_job(job_id)
    script = offline_stack.get(f"/jobs/{job_id}/script").json()
    assert script["story_title"] == "A Choir Of Lighthouses"
    assert [s["segment_number"] for s in script["segments"]] == list(range(1, 8))
    assert script["missing_sets"] == [] and len(script["set_synopses"]) == 3
    assert {c["id"] for c in script["characters"]} >= set(script["segments"][0]["characters"])


def test_docs_page_uses_local_assets(offline_stack):
    html = offline_stack.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in html and "openapi.json" in html


def test_wrong_keys_are_rate_limited_per_address(make_stack):
    stack = make_stack(MOVIE_GEN_API_KEYS=KEY_A, AUTH_FAILURE_LIMIT="3/minute")
    wrong = {"Authorization": "Bearer guess"}
    codes = [stack.get("/jobs", headers=wrong).status_code for _ in range(4)]
    assert codes == [401, 401, 401, 429]
    limited = stack.get("/jobs", headers=A)  # even a right key, from the address that guessed
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert "wrong API key" in limited.json()["message"]


def test_owner_ids_are_an_hmac_with_the_server_secret(make_stack):
    import hashlib
    import hmac

    stack = make_stack(MOVIE_GEN_API_KEYS=KEY_A, MOVIE_GEN_SECRET="s3cret")
    job_id = stack.post("/generate-movie-auto", json=IDEA, headers=A).json()["job_id"]
    owner = stack.store.get(job_id)["owner"]
    assert owner == hmac.new(b"s3cret", KEY_A.encode(), hashlib.sha256).hexdigest()[:32]
    assert hashlib.sha256(KEY_A.encode()).hexdigest()[:16] not in owner
    stack.wait_job(job_id, headers=A)


@pytest.mark.parametrize("proxies, separate", [("0", False), ("1", True)], ids=["no-proxy", "trusted-proxy"])
def test_forwarded_for_counts_only_behind_a_trusted_proxy(make_stack, proxies, separate):
    stack = make_stack(API_RATE_LIMIT="1/minute", TRUSTED_PROXIES=proxies)
    first = stack.post("/generate-movie-auto", json=IDEA, headers={"X-Forwarded-For": "203.0.113.1"})
    second = stack.post("/generate-movie-auto", json=IDEA, headers={"X-Forwarded-For": "203.0.113.2"})
    assert first.status_code == 202
    assert second.status_code == (202 if separate else 429)
