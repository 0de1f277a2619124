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


def _rule(schema: dict[str, Any]) -> str | None:
    """The bounds of one schema node in a few words ("2-160 characters", "exactly 4 items")."""
    pairs = (("minLength", "maxLength", "characters"), ("minItems", "maxItems", "items"),
             ("minimum", "maximum", ""))
    for low_key, high_key, unit in pairs:
        low, high = schema.get(low_key), schema.get(high_key)
        if low is None and high is None:
            continue
        if low == high:
            text = f"exactly {low}"
        elif high is None:
            text = f"at least {low}"
        elif low is None or (low_key == "minItems" and low == 0):
            text = f"at most {high}"
        else:
            text = f"{low}-{high}" if unit else f"{low} to {high}"
        unique = ", no repeats" if schema.get("uniqueItems") else ""
        return f"{text} {unit}".strip() + unique
    return None


def schema_rules(schema: Any) -> list[str]:
    """Each property's bounds ("location: 2-160 characters"), once per name, in schema order."""
    rules: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        if not isinstance(node, dict):
            return
        for name, sub in (node.get("properties") or {}).items():
            rule = _rule(sub) if isinstance(sub, dict) else None
            if rule:
                rules.setdefault(name, f"{name}: {rule}")
            walk(sub)
        walk(node.get("items"))

    walk(schema)
    return list(rules.values())


def schema_instructions(mode: str, schema: dict[str, Any], compact: bool = False) -> str:
    """Text added to the prompt: the bounds no grammar enforces in every mode, and the schema
    itself when the server does not enforce it (`compact`: without descriptions, no spaces)."""
    rules = "\n\nLimits (a reply outside them is rejected): " + "; ".join(schema_rules(schema)) + "."
    if mode == "json_schema":
        return rules
    fence = " Write the JSON alone or in one ```json code fence, nothing else." if mode == "prompt" else ""
    shown = without_keywords(schema, ("description",)) if compact else schema
    text = json.dumps(shown, separators=(",", ":")) if compact else json.dumps(shown)
    return ("\n\nAnswer with one JSON object that is valid against this JSON schema (every "
            f"required key, the exact counts, the length limits):\n{text}{fence}{rules}")


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
