"""Fuzz the API from its own /openapi.json: no server error, every answer matches its documentation."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from movie_gen import create_app
from movie_gen.config.settings import Settings

# The documentation is the contract: answers must match a documented status, type and schema.
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance,
          schemathesis.checks.response_schema_conformance,
          schemathesis.checks.response_headers_conformance]


def _operations() -> list[tuple[str, str, GenerationMode]]:
    """Every documented operation, with valid data, and with invalid data where it takes input."""
    app = create_app({"SETTINGS": Settings.from_env({"REDIS_URL": "redis://127.0.0.1:1/0"})})
    spec = app.test_client().get("/openapi.json").get_json()
    cases = []
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            query = [p for p in operation.get("parameters", []) if p.get("in") == "query"]
            if "requestBody" in operation or query:
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


@pytest.fixture(scope="module")
def api_schema(offline_stack):
    return schemathesis.openapi.from_url(offline_stack.base_url + "/openapi.json")


@pytest.fixture(scope="module")
def real_job_id(offline_stack):
    job_id = offline_stack.generate(idea="Fuzzed but real", total_segments=2, segments_per_set=1)
    offline_stack.wait_job(job_id)
    return job_id


@pytest.mark.timeout(300)
@pytest.mark.parametrize("method, path, mode", _operations())
def test_api_conforms_to_its_openapi_document(api_schema, real_job_id, method, path, mode):
    operation = api_schema[path][method]
    # a real job for half of the examples, so that the paths past the 404 are fuzzed too
    fixed = {"job_id": real_job_id} if "{job_id}" in path else None
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode), real=st_booleans())
    @settings(max_examples=30, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case, real):
        if fixed and real:
            case.path_parameters = {**(case.path_parameters or {}), **fixed}
        statuses.append(case.call_and_validate(checks=CHECKS, timeout=60).status_code)

    fuzz()
    assert statuses and all(code < 500 for code in statuses)


def st_booleans():
    from hypothesis import strategies

    return strategies.booleans()


@pytest.fixture(scope="module")
def keyed_stack(make_stack):
    return make_stack(MOVIE_GEN_API_KEYS="fuzz-key-1", API_RATE_LIMIT="10000/minute",
                      AUTH_FAILURE_LIMIT="100000/minute")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("method, path, mode", [c for c in _operations() if c[2] == GenerationMode.POSITIVE])
def test_api_with_keys_conforms_to_its_openapi_document(keyed_stack, method, path, mode):
    schema = schemathesis.openapi.from_url(keyed_stack.base_url + "/openapi.json")
    operation = schema[path][method]
    statuses: list[int] = []

    @given(case=operation.as_strategy(generation_mode=mode), with_key=st_booleans())
    @settings(max_examples=20, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case, with_key):
        headers = {"Authorization": "Bearer fuzz-key-1"} if with_key else {}
        statuses.append(case.call_and_validate(checks=CHECKS, headers=headers, timeout=60).status_code)

    fuzz()
    assert statuses and all(code < 500 for code in statuses)
    if path != "/healthz":
        assert 401 in statuses  # without the key
