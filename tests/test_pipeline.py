"""End to end with the offline writer: real Redis, a real worker, the API over HTTP, files on disk."""

from __future__ import annotations

import json
import time

import pytest


def _read(stack, relative: str) -> dict:
    return json.loads((stack.output_root / relative).read_text())


def test_30_segment_job_completes_with_three_set_files_and_metadata(offline_stack):
    stack = offline_stack
    response = stack.post("/generate-movie-auto", json={
        "idea": "A lighthouse keeper finds a map inside a storm", "total_segments": 30})
    assert response.status_code == 202
    body = response.json()
    assert body["state"] in ("queued", "outlining", "generating") and "status" not in body
    assert body["result"]["success"] is False and body["result"]["status_url"] == body["status_url"]
    assert response.headers["Location"] == body["status_url"] == f"/jobs/{body['job_id']}"

    job = stack.wait_job(body["job_id"])
    assert job["state"] == "completed"
    assert job["progress"] == {"sets_total": 3, "sets_succeeded": 3, "sets_failed": 0, "sets_pending": 0,
                               "sets_cancelled": 0}
    result = job["result"]
    assert result["success"] is True and result["job_id"] == body["job_id"]
    assert result["provider"] == "offline"
    assert result["generation_summary"] == {
        "total_segments_requested": 30, "total_segments_generated": 30, "total_sets_requested": 3,
        "successful_sets": 3, "failed_sets": 0, "failed_set_numbers": []}
    assert result["retry_info"]["can_retry"] is False
    assert result["retry_info"]["retry_endpoint"] == "/retry-failed-story-sets"

    title, stem = result["story_title"], "A_Lighthouse_Keeper_Finds_A_Map"
    assert title == "A Lighthouse Keeper Finds A Map"
    files = sorted(p.name for p in (stack.output_root / "generated_movie_script").iterdir())
    assert files == [f"{stem}_metadata.json", f"{stem}_set_01.json", f"{stem}_set_02.json",
                     f"{stem}_set_03.json"]

    metadata = _read(stack, result["metadata_file"])
    roster = {c["id"] for c in metadata["bible"]["characters"]}
    assert metadata["job_id"] == body["job_id"] and metadata["state"] == "completed"
    assert metadata["request"]["idea"] == "A lighthouse keeper finds a map inside a storm"
    assert [s["status"] for s in metadata["sets"]] == ["success"] * 3
    assert metadata["token_usage"]["model_calls"] == 4
    assert len(metadata["bible"]["set_synopses"]) == 3

    numbers = []
    for entry in result["sets"]:
        assert entry["status"] == "success" and entry["segments_count"] == 10
        document = _read(stack, entry["file_path"])
        assert document["story_title"] == title and document["job_id"] == body["job_id"]
        assert document["set_info"]["set_number"] == entry["set_number"]
        for segment in document["segments"]:
            numbers.append(segment["segment_number"])
            assert set(segment["characters"]) <= roster
            assert {line["character"] for line in segment["dialogue"]} <= roster
            assert title in segment["visual_prompt"]
    assert numbers == list(range(1, 31))


def test_25_segments_in_sets_of_10_10_5(offline_stack):
    job_id = offline_stack.generate(idea="Twin astronauts swap places", total_segments=25,
                                    segments_per_set=10)
    result = offline_stack.wait_job(job_id)["result"]
    assert [s["segments_count"] for s in result["sets"]] == [10, 10, 5]
    assert [(s["first_segment"], s["last_segment"]) for s in result["sets"]] == [(1, 10), (11, 20), (21, 25)]
    last = _read(offline_stack, result["sets"][2]["file_path"])
    assert [s["segment_number"] for s in last["segments"]] == [21, 22, 23, 24, 25]


def test_wait_returns_the_result_in_one_call(offline_stack):
    response = offline_stack.post("/generate-movie-auto", json={
        "idea": "A quiet bakery at the edge of the universe", "total_segments": 4,
        "segments_per_set": 2, "wait": 60})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "completed" and body["result"]["generation_summary"]["successful_sets"] == 2


def test_two_jobs_with_the_same_title_never_share_files(offline_stack):
    ids = [offline_stack.generate(idea="Same idea twice", total_segments=2, segments_per_set=1,
                                  output_directory="shared") for _ in range(2)]
    results = [offline_stack.wait_job(i)["result"] for i in ids]
    paths = [{s["file_path"] for s in r["sets"]} | {r["metadata_file"]} for r in results]
    assert not paths[0] & paths[1]
    for job_id, result in zip(ids, results):
        assert _read(offline_stack, result["metadata_file"])["job_id"] == job_id
        for entry in result["sets"]:
            assert _read(offline_stack, entry["file_path"])["job_id"] == job_id


def test_save_to_files_false_writes_nothing(offline_stack):
    job_id = offline_stack.generate(idea="No files please", total_segments=3, segments_per_set=2,
                                    save_to_files=False, output_directory="nofiles")
    result = offline_stack.wait_job(job_id)["result"]
    assert result["success"] is True
    assert all("file_path" not in s for s in result["sets"])
    assert not (offline_stack.output_root / "nofiles").exists()


def test_job_url_shows_progress_while_running(make_stack):
    stack = make_stack(OFFLINE_LATENCY_S="0.4", concurrency=1)
    job_id = stack.generate(idea="A slow story", total_segments=3, segments_per_set=1)
    seen = set()
    while True:
        job = stack.get(f"/jobs/{job_id}").json()
        seen.add(job["state"])
        if job["state"] == "generating" and 0 < job["progress"]["sets_succeeded"] < 3:
            assert job["result"]["sets"][0]["status"] == "success"
            assert job["progress"]["sets_pending"] == 3 - job["progress"]["sets_succeeded"]
        if job["state"] in ("completed", "partial", "failed"):
            break
        stack.get(f"/jobs/{job_id}", params={"wait": 0.3})
    assert job["state"] == "completed"
    assert {"generating"} <= seen


@pytest.mark.parametrize("fail_sets", ["2"])
def test_a_set_that_fails_leaves_the_job_partial(make_stack, fail_sets):
    stack = make_stack(OFFLINE_FAIL_SETS=fail_sets)
    job_id = stack.generate(idea="A heist on a moving train", total_segments=30, max_retries=0)
    job = stack.wait_job(job_id)
    assert job["state"] == "partial"
    result = job["result"]
    assert result["success"] is False
    summary = result["generation_summary"]
    assert summary["failed_set_numbers"] == [2] and summary["successful_sets"] == 2
    assert summary["total_segments_generated"] == 20
    assert result["retry_info"] == {**result["retry_info"], "can_retry": True, "failed_sets": [2]}
    failed = result["sets"][1]
    assert failed["status"] == "failed" and "file_path" not in failed
    assert failed["error"].startswith("Failed to generate set 2 after 1 attempt: ")
    assert "OFFLINE_FAIL_SETS" in failed["error"]
    directory = stack.output_root / "generated_movie_script"
    assert not list(directory.glob("*_set_02.json"))
    assert len(list(directory.glob("*_set_0[13].json"))) == 2
    # the callback ran: the metadata file holds the final state
    metadata = _read(stack, result["metadata_file"])
    assert metadata["state"] == "partial" and metadata["sets"][1]["status"] == "failed"


def test_a_set_task_that_dies_still_ends_the_job_through_the_errback(make_stack):
    # Revoking a set's task (as from Flower) makes the chord fail without its callback: the
    # errback must still end the job, with the lost set failed and the others kept.
    stack = make_stack(OFFLINE_LATENCY_S="0.5", concurrency=1)
    job_id = stack.generate(idea="An operator pulls the plug", total_segments=3, segments_per_set=1)
    task_id = stack.store.get(job_id)["sets"][2]["task_id"]
    stack.celery.control.revoke(task_id)
    job = stack.wait_job(job_id)
    assert job["state"] == "partial"
    sets = job["result"]["sets"]
    assert [s["status"] for s in sets] == ["success", "success", "failed"]
    assert sets[2]["error"].startswith("Set 3 did not finish: ")
    assert job["result"]["retry_info"]["can_retry"] is True


def test_a_job_redis_loses_mid_run_is_restored_from_disk_not_half_written(make_stack):
    stack = make_stack(OFFLINE_LATENCY_S="0.6", concurrency=1)
    job_id = stack.generate(idea="Amnesia", total_segments=3, segments_per_set=1)
    deadline = time.monotonic() + 20
    while stack.store.get(job_id)["state"] != "generating":
        assert time.monotonic() < deadline
        stack.get(f"/jobs/{job_id}", params={"wait": 0.1})
    stack.store.redis.delete(stack.store.key(job_id))
    response = stack.get(f"/jobs/{job_id}")
    assert response.status_code == 200, response.text
    job = response.json()
    assert job["state"] == "failed" and "lost" in job["result"]["error"]
    assert job["result"]["story_title"] == "Amnesia"


def test_a_worker_process_killed_mid_set_loses_nothing(make_stack):
    import os
    import signal
    from pathlib import Path

    stack = make_stack(OFFLINE_LATENCY_S="1.5", concurrency=1)
    job_id = stack.generate(idea="The night the power failed", total_segments=2, segments_per_set=1)
    deadline = time.monotonic() + 30
    while stack.store.get(job_id)["sets"][0]["status"] != "running":
        assert time.monotonic() < deadline
        stack.get(f"/jobs/{job_id}", params={"wait": 0.05})
    main = stack.workers[0].proc.pid
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                and (p / "stat").exists()
                and (p / "stat").read_text().rsplit(")", 1)[1].split()[1] == str(main)]
    assert len(children) == 1
    os.kill(children[0], signal.SIGKILL)  # the pool process dies in the middle of set 1
    job = stack.wait_job(job_id, timeout=60)
    assert job["state"] == "completed", job["result"]
    assert [s["segments_count"] for s in job["result"]["sets"]] == [1, 1]
