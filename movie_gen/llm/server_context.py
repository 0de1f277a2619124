"""The context size of one model server per request, read once from what the server reports.

`OPENAI_CONTEXT_TOKENS` wins when set. Otherwise the first request of a process asks the server:
`GET /v1/models` (llama-server: `data[].meta.n_ctx`, the context of one slot; vLLM:
`data[].max_model_len`), then Ollama's `POST /api/show` (`num_ctx` in `parameters`, else
`model_info["<arch>.context_length"]`). The answer, or that none was given, is kept per base URL
and model in this process; an overflow message that names the context replaces it.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Callable

import requests

log = logging.getLogger(__name__)

DISCOVERY_TIMEOUT_S = 5.0
_MODEL_FIELDS = (("meta", "n_ctx"), ("max_model_len",), ("context_length",), ("max_context_length",))


@dataclass(frozen=True)
class ServerContext:
    """Tokens of context one request may use (None: unknown), and where that number came from."""

    tokens: int | None
    source: str = ""

    def describe(self) -> str:
        """E.g. "context 8192 tokens per request, from GET /v1/models meta.n_ctx"."""
        if self.tokens:
            return f"context {self.tokens} tokens per request, from {self.source}"
        return "context size not reported by the server; OPENAI_CONTEXT_TOKENS sets it"


def _field(entry: dict[str, Any], path: tuple[str, ...]) -> int | None:
    value: Any = entry
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def context_from_models(body: Any, model: str) -> ServerContext | None:
    """The context in a `GET /v1/models` answer: the entry of `model` (or the only one) first."""
    if not isinstance(body, dict):
        return None
    entries = [e for e in body.get("data") or [] if isinstance(e, dict)]
    ours = [e for e in entries if e.get("id") == model] or (entries if len(entries) == 1 else [])
    for entry in [*ours, body]:
        for path in _MODEL_FIELDS:
            tokens = _field(entry, path)
            if tokens:
                return ServerContext(tokens, f"GET /v1/models {'.'.join(path)}")
    return None


def context_from_ollama_show(body: Any) -> ServerContext | None:
    """The context in Ollama's `/api/show` answer: `num_ctx` if the model sets it, else its trained length."""
    if not isinstance(body, dict):
        return None
    for line in str(body.get("parameters") or "").splitlines():
        name, _, value = line.partition(" ")
        if name == "num_ctx" and value.strip().isdigit():
            return ServerContext(int(value.strip()), "Ollama /api/show parameters num_ctx")
    info = body.get("model_info") if isinstance(body.get("model_info"), dict) else {}
    for key, value in info.items():
        if key.endswith(".context_length") and isinstance(value, int) and value > 0:
            return ServerContext(value, f"Ollama /api/show model_info {key}")
    return None


def discover(base_url: str, api_key: str, model: str) -> ServerContext | None:
    """Ask the server for its context; None when it could not be reached (ask again next time)."""
    headers = {"Authorization": f"Bearer {api_key}"}
    base = base_url.rstrip("/")
    try:
        answer = requests.get(f"{base}/models", headers=headers, timeout=DISCOVERY_TIMEOUT_S)
    except requests.RequestException as exc:
        log.info("cannot ask %s for its context size: %s", base, exc)
        return None
    found = context_from_models(_json(answer), model)
    if found is None and base.endswith("/v1"):
        try:
            show = requests.post(f"{base[:-3]}/api/show", json={"model": model}, headers=headers,
                                 timeout=DISCOVERY_TIMEOUT_S)
            found = context_from_ollama_show(_json(show))
        except requests.RequestException:
            pass
    found = found or ServerContext(None)
    log.info("model server %s (model %s): %s", base, model, found.describe())
    return found


def _json(answer: requests.Response) -> Any:
    try:
        return answer.json() if answer.ok else None
    except ValueError:
        return None


class ContextRegistry:
    """Context sizes by (base URL, model), shared by the threads of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], ServerContext] = {}

    def get(self, key: tuple[str, str], fetch: Callable[[], ServerContext | None]) -> ServerContext:
        """The known context of `key`, fetched once (a failed fetch is tried again next time)."""
        with self._lock:
            known = self._known.get(key)
        if known is not None:
            return known
        found = fetch()
        if found is None:
            return ServerContext(None)
        with self._lock:
            return self._known.setdefault(key, found)

    def known(self, key: tuple[str, str]) -> ServerContext | None:
        """The context kept for `key`, without asking the server."""
        with self._lock:
            return self._known.get(key)

    def learn(self, key: tuple[str, str], tokens: int, source: str) -> ServerContext:
        """Keep a context the server named (e.g. in an overflow message) for later requests."""
        context = ServerContext(tokens, source)
        with self._lock:
            self._known[key] = context
        return context

    def clear(self) -> None:
        with self._lock:
            self._known.clear()


CONTEXTS = ContextRegistry()
