"""The first hour of a new user: the seed's client unchanged, SYNC_WAIT_S and Prefer, files, tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SEED_SCRIPT = Path(__file__).resolve().parent / "scripts" / "seed_usage_example.py"
IDEA = {"idea": "A ferry that only sails at night", "total_segments": 2, "segments_per_set": 1}


@pytest.fixture(scope="module")
def sync_stack(make_stack):
    """A server with the synchronous setting, and a set that fails only in its job's first run."""
    return make_stack(SYNC_WAIT_S="60", OFFLINE_FAIL_FIRST_RUN_SETS="2")


@pytest.mark.timeout(120)
def test_the_seeds_usage_example_runs_unchanged(sync_stack, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(SEED_SCRIPT.read_text().replace("http://localhost:5000", sync_stack.base_url))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Success: False" and lines[1] == "Generated 20 segments"
    assert lines[-1] == "Final success: True"


def test_sync_wait_answers_200_with_the_result(sync_stack):
    response = sync_stack.post("/generate-movie-auto", json=IDEA)
    assert response.status_code == 200 and "Preference-Applied" not in response.headers
    body = response.json()
    assert body["state"] == "partial" and body["result"]["retry_info"]["can_retry"] is True
    assert body["status_url"] == body["result"]["status_url"] == response.headers["Location"]


def test_prefer_respond_async_answers_at_once_with_a_readable_result(sync_stack):
    response = sync_stack.post("/generate-movie-auto", json=IDEA, headers={"Prefer": "respond-async"})
    assert response.status_code == 202 and response.headers["Preference-Applied"] == "respond-async"
    body = response.json()
    assert body["state"] in ("queued", "outlining", "generating") and "status" not in body
    assert body["result"]["success"] is False and body["result"]["status_url"] == body["status_url"]
    retry = sync_stack.post("/retry-failed-story-sets", json={"job_id": body["job_id"]},
                            headers={"Prefer": "respond-async"})
    assert retry.status_code == 409 and "still running" in retry.json()["message"]
    sync_stack.wait_job(body["job_id"])


@pytest.mark.parametrize("prefer, code, applied", [
    ("wait=30", 200, "wait=30"), ("respond-async, wait=30", 200, "wait=30"),
    ("wait=0", 202, "wait=0"), ("wait", 200, "wait=300"), ("handling=lenient", 200, None),
])
def test_prefer_wait_chooses_per_request(offline_stack, prefer, code, applied):
    response = offline_stack.post("/generate-movie-auto", json=IDEA, headers={"Prefer": prefer})
    assert response.status_code == (202 if prefer == "handling=lenient" else code), response.text
    assert response.headers.get("Preference-Applied") == applied
    offline_stack.wait_job(response.json()["job_id"])


def test_files_follow_the_umask_and_the_offline_writer_spends_no_tokens(offline_stack):
    job = offline_stack.post("/generate-movie-auto", json={**IDEA, "wait": 60}).json()
    assert job["state"] == "completed"
    mask = os.umask(0o022)
    os.umask(mask)
    for entry in job["result"]["sets"]:
        mode = (offline_stack.output_root / entry["file_path"]).stat().st_mode & 0o777
        assert mode == 0o666 & ~mask
    assert job["result"]["provider"] == "offline"
    usage = job["result"]["token_usage"]
    assert usage["prompt_tokens"] == usage["completion_tokens"] == usage["total_tokens"] == 0


def test_tasks_use_our_own_queue_and_key_prefix(offline_stack):
    offline_stack.post("/generate-movie-auto", json={**IDEA, "wait": 60})
    keys = set(offline_stack.store.redis.keys("*"))
    assert "movie_gen:_kombu.binding.movie_gen" in keys  # our queue, under our prefix
    assert not {"celery", "_kombu.binding.celery", "unacked", "unacked_index"} & keys
    # everything else: our job store, Celery's broker and result keys, and our rate limits
    others = [k for k in keys if not k.startswith(("movie_gen:", "LIMITS:LIMITER/movie_gen"))]
    assert not others, others
