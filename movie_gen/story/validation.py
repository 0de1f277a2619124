"""Model output checked against the exact schema it was sent, then by named checks for what no
schema can say; each problem names its place ("segment 4 dialogue 2") and its JSON path."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Iterable

from jsonschema import Draft202012Validator, ValidationError

from movie_gen.errors import InvalidModelOutput
from movie_gen.story.text_rules import Path, Problem, show, text_problems

MAX_PROBLEMS = 6  # quoted in the next attempt's prompt: the first few are enough to act on
ITEMS = {"segments": "segment", "dialogue": "dialogue", "characters": "character",
         "locations": "location", "set_synopses": "synopsis of set"}  # an item's name in a place
ENUMS = {"characters": ("character id", "in the roster"), "character": ("character id", "in the roster"),
         "location": ("location", "one of the story bible's locations")}  # a value outside an enum
Check = Callable[[Any], Iterable[str]]  # a named check: the problems it finds in a reply's data


def at(path: Path, text: str) -> str:
    """A problem's text followed by its JSON path: "... (at $.segments[3].dialogue)"."""
    return f"{text} (at ${''.join(f'[{s}]' if isinstance(s, int) else f'.{s}' for s in path)})"


def checked(schema: dict[str, Any], data: Any, root: str, first: dict[str, int] | None = None,
            checks: Iterable[Check] = (), forgive: Callable[[ValidationError], bool] | None = None) -> Any:
    """`data` with its text stripped, when valid against `schema` and clean of `checks` and the text
    rules; else InvalidModelOutput listing the problems. Objects in lists are counted from `first`
    (default 1); `forgive` drops the schema errors that a named check judges more leniently."""
    data, first = _stripped(data), first or {}

    def problem(path: Path, text: str) -> str:  # "segment 4 dialogue 2: ... (at $.segments[1]...)"
        place = " ".join(f"{ITEMS.get(parent, parent)} {step + first.get(parent, 1)}"
                         for parent, step, child in zip((None, *path), path, (*path[1:], None))
                         if isinstance(step, int) and isinstance(child, str))
        return at(path, f"{place or root}: {text}")

    errors = [e for e in Draft202012Validator(schema).iter_errors(data) if not (forgive and forgive(e))]
    for error in errors:  # keys the schema does not name are dropped, not held against the reply
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            for key in set(error.instance) - set(error.schema.get("properties", {})):
                del error.instance[key]
    found = [text for error in errors if error.validator != "additionalProperties"
             for text in _schema_problems(error, problem, first)]
    for check in (*checks, partial(text_problems, problem)):
        try:
            found += check(data)
        except (KeyError, IndexError, TypeError, AttributeError):
            if not found:  # the schema passed: a check that cannot read the data is a bug
                raise
    if found:
        found = list(dict.fromkeys(found))
        more = f" (and {len(found) - MAX_PROBLEMS} more)" if len(found) > MAX_PROBLEMS else ""
        raise InvalidModelOutput("; ".join(found[:MAX_PROBLEMS]) + more)
    return data


def repeats(keys: Iterable[Any]) -> list[list[int]]:
    """The positions (from 1) of each key that occurs more than once, by its first position."""
    positions: dict[Any, list[int]] = {}
    for i, key in enumerate(keys, start=1):
        positions.setdefault(key, []).append(i)
    return [used for used in positions.values() if len(used) > 1]


def _schema_problems(error: ValidationError, problem: Problem, first: dict[str, int]) -> list[str]:
    path, schema, value, rule = tuple(error.path), error.schema, error.instance, error.validator
    if rule == "required":
        return [problem(path + (name,), f"the '{name}' list is missing" if schema["properties"][name].get(
                    "type") == "array" else f"'{name}' must be {_kind(schema['properties'][name])}, got None")
                for name in error.validator_value if name not in value]
    key = next((step for step in reversed(path) if isinstance(step, str)), "the reply")
    if rule in ("type", "minimum", "maximum"):
        text = f"{key} must be {_kind(schema)}, got {show(value)}"
    elif rule in ("minLength", "maxLength"):
        text = (f"'{key}' must be {schema.get('minLength', 0)} to {schema.get('maxLength')} characters, "
                f"got {len(value)}: {show(value)}")
    elif rule == "enum":
        noun, among = ENUMS.get(key, (key, "allowed"))
        text = f"{noun} {value!r} is not {among}: use one of {', '.join(map(repr, error.validator_value))}"
    elif rule in ("minItems", "maxItems"):
        low, high, start = schema.get("minItems", 0), schema.get("maxItems"), first.get(key, 1)
        bound = f"{low} {key.replace('_', ' ')} ({start} to {start + low - 1})" if low == high else \
            f"at least {low} {key}" if len(value) < low else f"at most {high} {key}"
        text = f"expected {bound}, got {len(value)}"
    elif rule == "uniqueItems":
        twice = next(item for i, item in enumerate(value) if item in value[:i])
        text = f"{twice!r} is listed twice in '{key}': list each once"
    else:
        text = error.message
    return [problem(path, text)]


def _kind(schema: dict[str, Any]) -> str:
    """What a value of `schema` is, in a few words ("an integer from 1 to 120")."""
    if schema.get("type") == "integer" and "minimum" in schema:
        return f"an integer from {schema['minimum']} to {schema.get('maximum')}"
    return {"string": "a non-empty string", "array": "a list", "object": "an object",
            "integer": "an integer"}.get(schema.get("type"), f"of type {schema.get('type')}")


def _stripped(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _stripped(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_stripped(item) for item in value]
    return value.strip() if isinstance(value, str) else value
