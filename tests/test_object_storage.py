"""Scripts on S3-compatible object storage (OUTPUT_URL=s3://…): moto's S3 server on a free port, two
workers with different OUTPUT_ROOTs (two machines) writing to one bucket, a web app that reads only
the bucket, a Redis that forgets, a retry, and a bucket that is unreachable for a while."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator

import boto3
import pytest
import requests

from movie_gen import create_app
from movie_gen.config.settings import Settings, SettingsError
from movie_gen.execution.canvas import SET_TASK
from movie_gen.storage.files import UnsafePath, reserve_stem
from movie_gen.storage.object_store import LocalStore, open_store
from movie_gen.storage.s3_store import S3Store

from .conftest import Stack, openai_env
from .servers import GunicornServer, MotoServer, TcpProxy

BUCKET, PREFIX = "movie-gen-test", "scripts"
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """moto's server behind a proxy that the tests can cut; the bucket (versioned, so that every
    write of an object shows) is made here, as an operator would."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    proxy = TcpProxy(server.port)
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": proxy.url}
    client = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    try:
        with pytest.MonkeyPatch.context() as patch:  # the web app of a stack runs in this process
            for name, value in env.items():
                patch.setenv(name, value)
            yield SimpleNamespace(client=client, proxy=proxy, env=env)
    finally:
        proxy.stop()
        server.stop()


@pytest.fixture(scope="module")
def stack(make_stack, s3: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """Two workers with OUTPUT_ROOTs of their own and one OUTPUT_URL; set 5 of a job fails its first run."""
    stack = make_stack(workers=0, concurrency=1, OUTPUT_URL=f"s3://{BUCKET}/{PREFIX}",
                       OFFLINE_LATENCY_S="1", OFFLINE_FAIL_FIRST_RUN_SETS="5", **s3.env)
    stack.roots = [tmp_path_factory.mktemp("machine-a"), tmp_path_factory.mktemp("machine-b")]
    for root in stack.roots:
        stack.start_workers(1, OUTPUT_ROOT=str(root))
    return stack


def versions(s3: SimpleNamespace, directory: str) -> dict[str, list[str]]:
    """Every object under PREFIX/directory/ with its version ids (one per write)."""
    found: dict[str, list[str]] = {}
    pages = s3.client.get_paginator("list_object_versions").paginate(Bucket=BUCKET, Prefix=f"{PREFIX}/{directory}/")
    for page in pages:
        for version in page.get("Versions", []):
            found.setdefault(version["Key"].removeprefix(f"{PREFIX}/"), []).append(version["VersionId"])
    return found


def stored(s3: SimpleNamespace, key: str) -> dict[str, Any]:
    return json.loads(s3.client.get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"].read())


def wait_for(check, timeout: float, what: str, stack: Stack, job_id: str) -> Any:
    """Poll the job's record (with long-polls of 0.1 s between) until `check(job)` holds."""
    deadline = time.monotonic() + timeout
    while not (found := check(stack.store.get(job_id))):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        stack.get(f"/jobs/{job_id}", params={"wait": 0.1})
    return found


@pytest.fixture(scope="module")
def finished(stack: Stack) -> dict[str, Any]:
    job_id = stack.generate(idea="Two machines share one lighthouse", total_segments=4,
                            segments_per_set=1, output_directory="machines")
    return stack.wait_job(job_id)


def test_two_workers_on_different_disks_write_every_file_to_the_bucket(stack, s3, finished):
    job_id, result = finished["job_id"], finished["result"]
    assert finished["state"] == "completed", result
    keys = set(versions(s3, "machines"))
    assert {s["file_path"] for s in result["sets"]} | {result["metadata_file"]} == keys
    for entry in result["sets"]:
        assert entry["file_url"] == f"s3://{BUCKET}/{PREFIX}/{entry['file_path']}"
        assert stored(s3, entry["file_path"])["set_info"]["set_number"] == entry["set_number"]
    assert result["metadata_file_url"] == f"s3://{BUCKET}/{PREFIX}/{result['metadata_file']}"
    assert stored(s3, result["metadata_file"])["state"] == "completed"
    assert stored(s3, f".jobs/{job_id}.json")["metadata_file"] == result["metadata_file"]
    for worker in stack.workers:  # both machines wrote sets
        assert f"Task {SET_TASK}[" in worker.log_path.read_text()
    on_disk = [p for root in (*stack.roots, stack.output_root) for p in root.rglob("*") if p.is_file()]
    assert on_disk == []


def test_the_web_serves_exports_and_files_from_the_bucket_with_the_disks_gone(stack, s3, finished):
    job_id, result = finished["job_id"], finished["result"]
    for root in (*stack.roots, stack.output_root):
        shutil.rmtree(root)
    pdf = stack.get(f"/jobs/{job_id}/script", params={"format": "pdf"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    first = result["sets"][0]
    download = finished["links"]["files"] + first["file_path"].split("/")[-1]
    assert download == f"/jobs/{job_id}/files/{first['file_path'].split('/')[-1]}"
    response = stack.get(download)
    assert response.status_code == 200 and response.headers["Content-Type"] == "application/json"
    assert response.json() == stored(s3, first["file_path"])
    metadata = stack.get(result["metadata_download_url"])
    assert metadata.status_code == 200 and metadata.json()["job_id"] == job_id
    stem = result["metadata_file"].split("/")[-1].removesuffix("_metadata.json")
    for name, status in [("..json", 400), ("a.txt", 400), ("a b.json", 400), ("x" * 201 + ".json", 400),
                         (f"{stem}_set_9.json", 404), (f"{stem}_set_09.json", 404),
                         ("Another_Story_set_01.json", 404)]:
        answer = stack.get(f"/jobs/{job_id}/files/{name}")
        assert answer.status_code == status, (name, answer.text)
        if status == 400:
            assert "name" in answer.json()["errors"], answer.json()
    # the owner check: with API keys on, the job belongs to no key of this client
    keyed = create_app({"SETTINGS": stack.settings.replace(api_keys=("k1",), server_secret="s"),
                        "TESTING": True}).test_client()
    assert keyed.get(download).status_code == 401
    assert keyed.get(download, headers={"Authorization": "Bearer k1"}).status_code == 404


def test_the_web_under_gunicorn_and_gevent_streams_a_file_from_the_bucket(stack, finished, tmp_path):
    # gevent-patched sockets under boto3; a short keep-alive, so that its workers stop at once
    server = GunicornServer({**stack.env, "HEADER_TIMEOUT_S": "1"}, tmp_path / "gunicorn.log")
    try:
        entry = finished["result"]["sets"][-1]
        download = finished["links"]["files"] + entry["file_path"].split("/")[-1]
        response = requests.get(server.base_url + download, timeout=30)
        assert response.status_code == 200 and response.json()["set_info"]["set_number"] == entry["set_number"]
    finally:
        server.stop()


def test_a_retry_rewrites_only_the_failed_sets_object(stack, s3):
    job_id = stack.generate(idea="The fifth reel burns", total_segments=5, segments_per_set=1,
                            output_directory="retry", max_retries=0)
    job = stack.wait_job(job_id)
    assert job["state"] == "partial" and job["result"]["generation_summary"]["failed_set_numbers"] == [5]
    before = versions(s3, "retry")
    response = stack.post("/retry-failed-story-sets", json={"job_id": job_id, "wait": 60})
    assert response.status_code == 200 and response.json()["state"] == "completed", response.text
    after = versions(s3, "retry")
    sets = {s["set_number"]: s["file_path"] for s in response.json()["result"]["sets"]}
    assert sets[5] not in before and len(after[sets[5]]) == 1  # written once, by the retry
    assert all(after[sets[n]] == before[sets[n]] for n in range(1, 5))  # never rewritten
    metadata = response.json()["result"]["metadata_file"]
    assert len(after[metadata]) > len(before[metadata])


def _storage_errors(job: dict[str, Any] | None) -> int:
    return sum(a.get("error_class") == "storage_unavailable"
               for s in (job or {}).get("sets", []) for a in s.get("attempts", []))


def test_an_unreachable_bucket_makes_a_set_retry_and_the_job_still_completes(make_stack, s3, llmock):
    llmock.reset()
    stack = make_stack(concurrency=2, OUTPUT_URL=f"s3://{BUCKET}/{PREFIX}", **s3.env,
                       **openai_env(llmock, OPENAI_TIMEOUT_S="20"))
    # Both sets' model calls are held 3 s at the model server; the bucket goes away while they
    # are held, so both sets have their scripts in hand and nowhere to write them.
    llmock.hold(3, calls=2, after=1)
    job_id = stack.generate(idea="The cable to the island snaps", total_segments=2, segments_per_set=1,
                            output_directory="outage", max_retries=6)
    llmock.wait_held("both sets' model calls")
    s3.proxy.stop()  # the bucket is unreachable: connections refused
    try:
        # both sets' attempts fail, and a retry of one of them too: seconds without the bucket
        wait_for(lambda job: _storage_errors(job) >= 3, 30, "three attempts refused by the storage",
                 stack, job_id)
    finally:
        s3.proxy.start()
    job = stack.wait_job(job_id, timeout=90)
    assert job["state"] == "completed", job["result"]
    retried = [s for s in job["result"]["sets"]
               if any(a.get("error_class") == "storage_unavailable" for a in s["attempt_history"])]
    assert retried and _storage_errors({"sets": [{"attempts": s["attempt_history"]} for s in retried]}) >= 3
    for entry in retried:
        history = entry["attempt_history"]
        assert history[-1]["outcome"] == "success"
        # refused, or cut while a request was on its way; never naming the server (its address)
        assert history[0]["error"].startswith("the output storage did not answer (")
        assert "127.0.0.1" not in history[0]["error"]
    assert set(versions(s3, "outage")) >= {s["file_path"] for s in job["result"]["sets"]}


@pytest.mark.parametrize("env, root, url", [
    ({}, "output", ""), ({"OUTPUT_ROOT": "/srv/out"}, "/srv/out", ""),
    ({"OUTPUT_URL": "s3://bucket/some/prefix"}, "output", "s3://bucket/some/prefix"),
    ({"OUTPUT_URL": "file:///srv/files", "OUTPUT_ROOT": "/srv/out"}, "/srv/files", ""),
    ({"OUTPUT_URL": "/srv/files"}, "/srv/files", "")])
def test_output_url_is_a_bucket_or_a_directory(env, root, url):
    settings = Settings.from_env(env)
    assert (settings.output_root, settings.output_url) == (Path(root).resolve(), url)
    assert isinstance(open_store(settings), S3Store if url else LocalStore)


@pytest.mark.parametrize("url", ["s3://", "gs://bucket/x", "https://minio:9000/bucket"])
def test_output_url_of_another_kind_is_refused(url):
    with pytest.raises(SettingsError, match="OUTPUT_URL must be"):
        Settings.from_env({"OUTPUT_URL": url})


def test_local_keys_stay_under_the_root(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "secret.json").write_text("{}")
    os.symlink(tmp_path, tmp_path / "root" / "link")
    store = LocalStore(tmp_path / "root")
    for key in ("../secret.json", "link/secret.json", "/etc/hostname"):
        assert store.read_json(key) is None and store.stream(key) is None, key
    with pytest.raises(UnsafePath):
        store.write_json("link/x.json", {})


def test_a_bucket_that_does_not_exist_fails_for_good(s3):
    with pytest.raises(OSError, match="NoSuchBucket"):
        S3Store("s3://no-such-bucket/x").write_json("a.json", {})


def test_stems_are_claimed_once_in_a_bucket(s3, stack):
    store = open_store(stack.settings)
    assert reserve_stem(store, "stems", "My Film!", {"job_id": "a"}, "a") == "My_Film"
    assert reserve_stem(store, "stems", "My Film?", {"job_id": "b"}, "b") == "My_Film_2"
    assert reserve_stem(store, "stems", "My Film", {"job_id": "a"}, "a") == "My_Film"  # redelivery
    assert store.read_json("stems/none.json") is None and store.stream("stems/none.json") is None


def test_a_job_redis_forgot_is_rebuilt_from_the_bucket(stack, finished):
    job_id = finished["job_id"]
    stack.store.redis.flushdb()  # the job, its segments: all gone from Redis
    job = stack.get(f"/jobs/{job_id}").json()
    assert job["state"] == "completed"
    assert [s["file_path"] for s in job["result"]["sets"]] == [s["file_path"] for s in finished["result"]["sets"]]
    script = stack.get(f"/jobs/{job_id}/script").json()  # the segments, read back from the objects
    assert script["segments_count"] == 4 and script["missing_sets"] == []
    assert stack.get(f"/jobs/{job_id}/script", params={"format": "pdf"}).content.startswith(b"%PDF")
