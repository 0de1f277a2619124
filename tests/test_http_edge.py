"""The HTTP edge under gunicorn's gevent workers: malformed bodies, slow clients, 200 long-polls."""

from __future__ import annotations

import json
import socket
import time
import uuid
from typing import Iterator

import pytest
import requests

from .servers import GunicornServer, wait_until

POSTS = ["/generate-movie-auto", "/retry-failed-story-sets"]
MALFORMED = {
    "deep-array": b"[" * 100_000 + b"]" * 100_000,
    "deep-object": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "huge-integer": b'{"idea": "x", "total_segments": ' + b"9" * 5_000 + b"}",
    "array-body": b'[{"idea": "x"}]',
    "60000-unknown-keys": b"{" + b",".join(b'"k%d": 1' % i for i in range(60_000)) + b"}",
    "not-utf8": b'{"idea": "\xff\xfe"}',
}


@pytest.fixture(scope="module")
def edge(make_stack, tmp_path_factory) -> Iterator:
    """A stack whose web app runs under gunicorn as `movie-gen up` and compose run it."""
    stack = make_stack(LONG_POLLS_PER_KEY="250", BODY_TIMEOUT_S="1", HEADER_TIMEOUT_S="2",
                       WEB_WORKERS="2")
    server = GunicornServer(stack.env, tmp_path_factory.mktemp("gunicorn") / "gunicorn.log")
    yield stack, server
    # The module's long-polls (wait=60) hold gunicorn's graceful stop after their clients left;
    # how a stop ends streams is tested in test_event_stream.py.
    server.stop(timeout=3)


def idle_job(stack) -> str:
    """A job that stays `queued` (never enqueued): long-polls on it wait their whole time."""
    job_id = uuid.uuid4().hex
    stack.store.create(job_id, {"idea": "x", "total_segments": 1, "segments_per_set": 1,
                                "save_to_files": False, "output_directory": "x", "max_retries": 0},
                       [{"set_number": 1, "first_segment": 1, "last_segment": 1, "task_id": "t"}],
                       "offline")
    return job_id


def raw_exchange(port: int, data: bytes, timeout: float = 15) -> tuple[bytes, float]:
    """Send raw bytes, read until the server closes; returns what came back and how long it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received, time.monotonic() - started


@pytest.mark.parametrize("path", POSTS)
@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_bodies_are_small_4xx_json(edge, path, body):
    _, server = edge
    response = requests.post(server.base_url + path, data=body, timeout=30,
                             headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text[:500]
    payload = response.json()
    assert payload["errors"] and len(response.content) < 4096
    assert "Traceback" not in response.text


def test_gevent_patches_before_ssl_and_redis_are_imported(edge):
    _, server = edge
    assert "Using worker: gevent" in server.log_path.read_text()
    assert "MonkeyPatchWarning" not in server.log_path.read_text()


def test_an_array_body_is_told_to_be_an_object(edge):
    _, server = edge
    response = requests.post(server.base_url + "/generate-movie-auto", json=[1], timeout=10)
    assert response.json()["errors"] == {"body": ["The body must be a JSON object."]}


@pytest.mark.parametrize("path", POSTS)
def test_bad_chunked_encoding_is_a_400(edge, path):
    _, server = edge
    request = (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n").encode()
    received, _ = raw_exchange(server.port, request)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), received[:300]
    assert b"InvalidChunkSize" in body and b'"errors"' in body


def test_a_body_slower_than_body_timeout_is_dropped(edge):
    _, server = edge
    request = (b"POST /generate-movie-auto HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 1000\r\n\r\n{\"idea\"")
    received, _ = raw_exchange(server.port, request)  # BODY_TIMEOUT_S=1; bounded by the socket's 15 s
    assert received.startswith(b"HTTP/1.1 408"), received[:300]


def test_headers_slower_than_header_timeout_are_dropped(edge):
    _, server = edge
    received, _ = raw_exchange(server.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert received == b""  # closed by the server (HEADER_TIMEOUT_S=2) before the socket's 15 s


@pytest.mark.timeout(120)
def test_200_long_polls_leave_health_and_plain_gets_answering(edge):
    stack, server = edge
    job_id = idle_job(stack)
    request = f"GET /jobs/{job_id}?wait=60 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    polls = []
    try:
        for _ in range(200):
            sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
            sock.sendall(request)
            polls.append(sock)
        wait_until(lambda: stack.store.redis.zcard("movie_gen:long_polls:127.0.0.1") == 200, 30,
                   "200 long-polls to be waiting")
        for path in ("/healthz", "/jobs", f"/jobs/{job_id}"):
            response = requests.get(server.base_url + path, timeout=1)  # the 1 s bound
            assert response.status_code == 200, response.text
    finally:
        for sock in polls:
            sock.close()


def test_long_polls_over_the_per_key_cap_answer_429(edge):
    stack, server = edge
    job_id = idle_job(stack)
    name = "movie_gen:long_polls:127.0.0.1"
    now = time.time()
    stack.store.redis.zadd(name, {f"held-{i}": now + 60 for i in range(250)})  # the cap is 250
    try:
        response = requests.get(f"{server.base_url}/jobs/{job_id}", params={"wait": 5}, timeout=10)
        assert response.status_code == 429 and response.headers["Retry-After"] == "1"
        assert "long-polls" in response.json()["message"]
        assert requests.get(f"{server.base_url}/jobs/{job_id}", timeout=10).status_code == 200
    finally:
        stack.store.redis.zrem(name, *[f"held-{i}" for i in range(250)])


def test_a_long_poll_returns_when_the_job_ends(edge):
    stack, server = edge
    response = requests.post(server.base_url + "/generate-movie-auto", timeout=60,
                             json={"idea": "A clock that runs backwards", "total_segments": 2,
                                   "segments_per_set": 1, "wait": 30})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "completed" and body["result"]["success"] is True
    assert json.loads(json.dumps(body))["status_url"] == f"/jobs/{body['job_id']}"


def _chunks(data: bytes, size: int = 65536) -> Iterator[bytes]:
    """`data` as a generator, so that requests sends it chunked (no Content-Length)."""
    for start in range(0, len(data), size):
        yield data[start:start + size]


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_an_oversized_body_is_a_413_stating_the_limit(edge, chunked):
    _, server = edge
    body = b'{"idea": "' + b"x" * 1_100_000 + b'"}'  # MAX_REQUEST_BYTES is 1048576 by default
    response = requests.post(server.base_url + "/generate-movie-auto", timeout=30,
                             data=_chunks(body) if chunked else body,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text[:300]
    payload = response.json()
    assert "larger than the limit of 1048576 bytes (MAX_REQUEST_BYTES)" in payload["message"]
    assert payload["errors"] == {"body": [payload["message"]]}


def test_a_chunked_body_of_exactly_the_limit_is_read_whole(edge):
    _, server = edge
    body = b'{"idea": "' + b"x" * (1_048_576 - 12) + b'"}'
    response = requests.post(server.base_url + "/generate-movie-auto", data=_chunks(body), timeout=30,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and "idea" in response.json()["errors"], response.text[:300]


@pytest.mark.parametrize("method, path", [("GET", "/jobs/{}"), ("GET", "/jobs/{}/sets"),
                                          ("GET", "/jobs/{}/script"), ("POST", "/jobs/{}/cancel")])
def test_a_5000_character_job_id_is_a_json_400_naming_job_id(edge, method, path):
    _, server = edge
    response = requests.request(method, server.base_url + path.format("a" * 5000), timeout=10)
    assert response.status_code == 400, response.text[:300]
    assert response.headers["Content-Type"] == "application/json"
    assert "Longer than 64 characters" in response.json()["errors"]["job_id"][0]
    assert len(response.content) < 1024  # the id is not echoed back


REFUSED_BY_GUNICORN = {
    "request-line-over-8190": (b"GET /jobs/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    "header-over-8190": (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    "not-http": (b"HELLO THERE\r\n\r\n", 400),
}


@pytest.mark.parametrize("request_bytes, code", REFUSED_BY_GUNICORN.values(), ids=REFUSED_BY_GUNICORN.keys())
def test_requests_gunicorn_refuses_itself_get_the_json_error_body(edge, request_bytes, code):
    _, server = edge
    received, _ = raw_exchange(server.port, request_bytes)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % code), received[:300]
    assert b"Content-Type: application/json" in head
    payload = json.loads(body)
    assert payload["code"] == code and payload["message"]
