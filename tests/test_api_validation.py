"""Bad input gets a 4xx with a JSON body naming the field; never a 500, never a traceback."""

from __future__ import annotations

import os

import pytest

VALID = {"idea": "A map inside a storm"}


@pytest.mark.parametrize("body, field", [
    ({}, "idea"),
    ({"idea": ""}, "idea"),
    ({"idea": "   "}, "idea"),
    ({"idea": "x" * 4001}, "idea"),
    ({"idea": 42}, "idea"),
    ({"idea": "lone \ud800 surrogate"}, "idea"),
    ({"idea": "a nul \u0000 byte"}, "idea"),
    ({**VALID, "total_segments": 0}, "total_segments"),
    ({**VALID, "total_segments": 1001}, "total_segments"),
    ({**VALID, "total_segments": "30"}, "total_segments"),
    ({**VALID, "total_segments": 2.5}, "total_segments"),
    ({**VALID, "total_segments": True}, "total_segments"),
    ({**VALID, "segments_per_set": 0}, "segments_per_set"),
    ({**VALID, "segments_per_set": 51}, "segments_per_set"),
    ({**VALID, "max_retries": 11}, "max_retries"),
    ({**VALID, "max_retries": -1}, "max_retries"),
    ({**VALID, "save_to_files": "maybe"}, "save_to_files"),
    ({**VALID, "wait": 301}, "wait"),
    ({**VALID, "unknown": 1}, "unknown"),
    ({**VALID, "output_directory": "../x"}, "output_directory"),
    ({**VALID, "output_directory": "a/../../x"}, "output_directory"),
    ({**VALID, "output_directory": "/etc"}, "output_directory"),
    ({**VALID, "output_directory": ""}, "output_directory"),
    ({**VALID, "output_directory": ".hidden"}, "output_directory"),
    ({**VALID, "output_directory": "a\\b"}, "output_directory"),
    ({**VALID, "output_directory": 7}, "output_directory"),
])
def test_generate_rejects_bad_fields(offline_stack, body, field):
    response = offline_stack.post("/generate-movie-auto", json=body)
    assert response.status_code == 400, response.text
    payload = response.json()
    assert payload["code"] == 400 and payload["status"] == "Bad Request"
    assert field in payload["errors"], payload
    assert field in payload["message"]


def test_several_bad_fields_are_all_named(offline_stack):
    response = offline_stack.post("/generate-movie-auto", json={"total_segments": 0, "extra": 1})
    assert response.status_code == 400
    assert {"idea", "total_segments", "extra"} <= set(response.json()["errors"])


@pytest.mark.parametrize("data, headers, status", [
    ("idea=hello", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
    ("hello", {"Content-Type": "text/plain"}, 415),
    ("{not json", {"Content-Type": "application/json"}, 400),
    ("[1, 2]", {"Content-Type": "application/json"}, 400),
    ("", {"Content-Type": "application/json"}, 400),
])
def test_bodies_that_are_not_a_json_object(offline_stack, data, headers, status):
    response = offline_stack.post("/generate-movie-auto", data=data, headers=headers)
    assert response.status_code == status, response.text
    assert response.json()["code"] == status and "Traceback" not in response.text


def test_symlink_escaping_output_root_is_refused(offline_stack, tmp_path):
    os.symlink(tmp_path, offline_stack.output_root / "escape")
    response = offline_stack.post("/generate-movie-auto", json={**VALID, "output_directory": "escape/x"})
    assert response.status_code == 400
    assert "outside OUTPUT_ROOT" in response.json()["errors"]["output_directory"][0]


def test_oversized_body_is_413(offline_stack):
    response = offline_stack.post("/generate-movie-auto", json={"idea": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413 and response.json()["code"] == 413


@pytest.mark.parametrize("path, status", [
    ("/jobs/" + "0" * 32, 404), ("/jobs/not-a-job", 404), ("/jobs/../../etc/passwd", 404),
    ("/nowhere", 404),
])
def test_unknown_resources_are_json_404(offline_stack, path, status):
    response = offline_stack.get(path)
    assert response.status_code == status and response.json()["code"] == status


def test_wrong_method_is_json_405(offline_stack):
    response = offline_stack.get("/generate-movie-auto")
    assert response.status_code == 405 and response.json()["code"] == 405


@pytest.mark.parametrize("wait", ["x", "-1", "61"])
def test_job_wait_is_validated(offline_stack, wait):
    job_id = offline_stack.generate(idea="Short", total_segments=1)
    response = offline_stack.get(f"/jobs/{job_id}", params={"wait": wait})
    assert response.status_code == 400 and "wait" in response.json()["errors"]


def test_openapi_document_describes_the_endpoints(offline_stack):
    spec = offline_stack.get("/openapi.json").json()
    assert {"/generate-movie-auto", "/jobs/{job_id}", "/retry-failed-story-sets", "/healthz"} <= set(spec["paths"])
    post = spec["paths"]["/generate-movie-auto"]["post"]
    assert {"202", "200", "400", "415"} <= set(post["responses"])


def test_healthz_reports_redis_and_workers(offline_stack):
    response = offline_stack.get("/healthz")
    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == "ok"
    assert response.json()["checks"]["workers"].endswith("answering")


def test_a_server_error_names_a_request_id_and_hides_the_traceback(caplog):
    from movie_gen import create_app
    from movie_gen.config.settings import Settings

    app = create_app({"SETTINGS": Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0"})})

    def broken():
        raise RuntimeError("secret internals")

    app.add_url_rule("/broken", "broken", broken)
    response = app.test_client().get("/broken")
    assert response.status_code == 500
    body = response.get_json()
    assert body["code"] == 500 and body["request_id"]
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    logged = [r for r in caplog.records if getattr(r, "request_id", None) == body["request_id"]]
    assert logged and logged[0].exc_info is not None


def test_unreachable_job_store_is_a_json_503():
    from movie_gen import create_app
    from movie_gen.config.settings import Settings

    app = create_app({"SETTINGS": Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0"})})
    response = app.test_client().get("/jobs/" + "a" * 32)
    assert response.status_code == 503 and response.get_json()["code"] == 503
