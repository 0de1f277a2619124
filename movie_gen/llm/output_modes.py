"""Structured-output modes: how the schema reaches the server, and how JSON is read back from the reply."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import InvalidModelOutput

# From most to least constrained; `auto` starts at the first and falls back along this order.
MODES = ("json_schema", "json_object", "prompt")
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


def next_mode(mode: str) -> str | None:
    """The mode to try when the server refuses `mode`, or None after the last one."""
    index = MODES.index(mode)
    return MODES[index + 1] if index + 1 < len(MODES) else None


def response_format(mode: str, name: str, schema: dict[str, Any]) -> dict[str, Any] | None:
    """The `response_format` of a request in `mode` (None: send none)."""
    if mode == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": name, "strict": True, "schema": schema}}
    if mode == "json_object":
        # llama-cpp-python turns `schema` into a grammar (other servers ignore the key); its grammar
        # of a maxLength in the hundreds fails to parse and crashed the server here: bounds stay in
        # the prompt's copy of the schema and in our validation
        return {"type": "json_object", "schema": without_keywords(schema, ("maxLength",))}
    return None


def without_keywords(schema: Any, keywords: tuple[str, ...]) -> Any:
    """A copy of `schema` without `keywords` at any depth."""
    if isinstance(schema, dict):
        return {k: without_keywords(v, keywords) for k, v in schema.items() if k not in keywords}
    if isinstance(schema, list):
        return [without_keywords(v, keywords) for v in schema]
    return schema


def schema_instructions(mode: str, schema: dict[str, Any]) -> str:
    """Text added to the prompt when the server does not enforce the schema itself."""
    if mode == "json_schema":
        return ""
    fence = " Write the JSON alone or in one ```json code fence, nothing else." if mode == "prompt" else ""
    return ("\n\nAnswer with one JSON object that is valid against this JSON schema (every "
            f"required key, the exact counts, the length limits):\n{json.dumps(schema)}{fence}")


def parse_json_reply(text: str | None) -> Any:
    """The JSON object in a reply: the whole text, a ```json code fence, or the outermost {...}."""
    text = (text or "").strip()
    candidates = [text]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    if "{" in text:
        candidates.append(text[text.index("{"):text.rindex("}") + 1] if "}" in text else text)
    error: json.JSONDecodeError | None = None
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except json.JSONDecodeError as exc:
            error = error or exc
    raise InvalidModelOutput(f"model reply is not valid JSON: {error} (reply starts {text[:80]!r})")
