"""Rules of the model's text fields: length bounds and descriptions (sent in the schema), no loops, names."""

from __future__ import annotations

import difflib
import re
from collections import Counter
from typing import Any, Callable, Iterator

# (min, max) characters of each text field; the schema carries them so constrained servers obey.
LENGTHS: dict[str, tuple[int, int]] = {
    "title": (1, 120), "logline": (10, 600), "tone": (3, 200),
    "id": (1, 40), "name": (1, 80), "role": (2, 120), "visual_description": (20, 900),
    "description": (5, 600), "summary": (10, 700), "ends_with": (5, 400),
    "location": (2, 160), "action": (10, 1200), "visual_prompt": (20, 1800), "camera": (3, 200),
    "narration": (1, 700), "mood": (2, 80), "line": (1, 500),
}

# What each field holds, shown in the schema; a value equal to one of these was copied, not written.
DESCRIPTIONS: dict[str, str] = {
    "title": "the film's title", "logline": "one sentence", "tone": "genre and mood",
    "id": "stable lowercase id, e.g. 'mara'; used by every segment", "name": "the character's name",
    "role": "protagonist, antagonist, mentor, ...",
    "visual_description": "face, build, hair, costume: enough to draw the same person in every shot",
    "location_name": "short name", "description": "look and feel",
    "summary": "what happens in this set", "ends_with": "the exact situation at the end of this set",
    "location": "the name of one of the story bible's locations",
    "action": "what happens on screen in this shot",
    "visual_prompt": "a self-contained image prompt: the place, the light, each character's look",
    "camera": "shot size, angle and movement", "narration": "the voice-over of this shot",
    "mood": "the feeling of this shot in a few words", "line": "what the character says",
}
NAME_SIMILARITY = 0.85  # difflib ratio above which two names are the same name misspelt

PHRASE_WORDS = 4  # a "phrase" is this many words in a row
MAX_REPEATS = 3  # ... and may occur this many times in one field
_WORD = re.compile(r"[\w']+")
Path = tuple[Any, ...]  # keys and list indexes from the root of a reply
Problem = Callable[[Path, str], str]  # a problem's text, with its place, found at a path


def text_schema(key: str, description: str | None = None) -> dict[str, Any]:
    """The JSON schema of text field `key`, with its length bounds and its description."""
    low, high = LENGTHS[key]
    schema: dict[str, Any] = {"type": "string", "minLength": low, "maxLength": high}
    description = description or DESCRIPTIONS.get(key)
    if description:
        schema["description"] = description
    return schema


def repeated_phrase(text: str) -> tuple[str, int] | None:
    """The most repeated phrase of `text` and its count, if it repeats more than MAX_REPEATS times."""
    words = _WORD.findall(text.lower())
    grams = Counter(tuple(words[i:i + PHRASE_WORDS]) for i in range(len(words) - PHRASE_WORDS + 1))
    if not grams:
        return None
    phrase, count = grams.most_common(1)[0]
    return (" ".join(phrase), count) if count > MAX_REPEATS else None


def normalized(text: str) -> str:
    """Lowercase words only, for comparing texts and names ("The Harbour!" -> "the harbour")."""
    return " ".join(_WORD.findall(text.lower()))


def name_key(name: str) -> str:
    """A name as compared with others: normalized, without a leading article."""
    return re.sub(r"^(?:the|a|an) ", "", normalized(name))


def same_name(a: str, b: str) -> bool:
    """Whether two names mean the same thing: equal but for case, articles, punctuation or a typo."""
    key_a, key_b = name_key(a), name_key(b)
    return key_a == key_b or difflib.SequenceMatcher(None, key_a, key_b).ratio() >= NAME_SIMILARITY


def known_name(value: str, names: list[str]) -> bool:
    """Whether `value` is one of `names`, or names one of them with more words ("the archive, upper floor")."""
    key = name_key(value)
    for name in names:
        wanted = name_key(name)
        if same_name(value, name) or (wanted and re.search(rf"\b{re.escape(wanted)}\b", key)):
            return True
    return False


_COPIES = {normalized(d) for d in DESCRIPTIONS.values()}


def show(value: Any, limit: int = 60) -> str:
    """`repr(value)`, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…'"


def text_problems(problem: Problem, data: Any) -> Iterator[str]:
    """Every text field of `data`: no phrase looping more than MAX_REPEATS times, no copy of a schema
    description (`problem` words a problem found at a path)."""
    for path, text in _texts(data):
        key, loop = path[-1], repeated_phrase(text)
        if loop:
            yield problem(path, f"'{key}' repeats the phrase {loop[0]!r} {loop[1]} times "
                                f"(at most {MAX_REPEATS} allowed)")
        if normalized(text) in _COPIES:
            yield problem(path, f"'{key}' is {show(text)}, the schema's description of a field: "
                                f"write this {key.replace('_', ' ')} itself")


def _texts(node: Any, path: Path = ()) -> Iterator[tuple[Path, str]]:
    """Each string held under a key, with its path (ids listed in 'characters' are no text)."""
    if isinstance(node, dict):
        for key, item in node.items():
            if isinstance(item, str):
                yield path + (key,), item
            yield from _texts(item, path + (key,))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _texts(item, path + (i,))
