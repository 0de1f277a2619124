"""Request bodies parsed safely: size, nesting depth and number length are bounded before parsing."""

from __future__ import annotations

import json
import re
from contextlib import nullcontext
from typing import Any, ContextManager

from flask import Request, current_app
from flask_smorest import abort
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

MAX_DEPTH = 32
MAX_INT_DIGITS = 30
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(rb"[\[\]{}]")


class OversizedNumber:
    """A JSON integer with more digits than any field accepts: fields reject it by type."""

    def __init__(self, digits: str) -> None:
        self.digits = len(digits)

    def __repr__(self) -> str:
        return f"<integer of {self.digits} digits>"


def _bounded_int(text: str) -> int | OversizedNumber:
    return int(text) if len(text.lstrip("-")) <= MAX_INT_DIGITS else OversizedNumber(text)


def nesting_depth(data: bytes, limit: int = MAX_DEPTH) -> int:
    """How deeply arrays and objects nest in `data` (strings skipped); stops counting past `limit`."""
    depth = deepest = 0
    for match in _BRACKETS.finditer(_STRINGS.sub(b'""', data)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


class BodyTimeout(Exception):
    """The client did not send its whole body within BODY_TIMEOUT_S."""


def _deadline(seconds: float) -> ContextManager[Any]:
    """A timeout on reading the body: gevent's when the server runs gevent workers."""
    try:
        from gevent import Timeout, monkey
    except ImportError:
        return nullcontext()
    return Timeout(seconds, BodyTimeout) if monkey.is_module_patched("socket") else nullcontext()


def _refuse_a_longer_stream(req: Request, data: bytes) -> None:
    """A body without Content-Length (chunked) is read up to the limit: more after it is a 413.

    werkzeug stops such a stream at MAX_CONTENT_LENGTH without a word; the server's own stream
    says whether anything follows.
    """
    limit = req.max_content_length
    if limit is not None and req.content_length is None and len(data) >= limit \
            and req.environ["wsgi.input"].read(1):
        raise RequestEntityTooLarge()


def read_body(req: Request) -> bytes:
    """The raw body; a body that breaks off, is malformed, too slow or too large is a 4xx."""
    seconds = current_app.extensions["movie_gen"]["services"].settings.body_timeout_s
    try:
        with _deadline(seconds):
            data = req.get_data(cache=True)
            _refuse_a_longer_stream(req, data)
            return data
    except HTTPException:
        raise
    except BodyTimeout:
        abort(408, message=f"The request body did not arrive within {seconds:g} s.",
              headers={"Connection": "close"})
    except Exception as exc:  # noqa: BLE001  (gunicorn's ParseException, a dropped socket, ...)
        current_app.logger.info("unreadable request body: %s", exc)
        abort(400, errors={"body": [f"The request body could not be read ({type(exc).__name__})."]})


def load_json_object(req: Request) -> dict[str, Any]:
    """Parse the body as one JSON object, or answer 400 naming what is wrong with it."""
    data = read_body(req)
    if nesting_depth(data) > MAX_DEPTH:
        abort(400, errors={"body": [f"JSON nests deeper than {MAX_DEPTH} levels."]})
    try:
        value = json.loads(data.decode("utf-8"), parse_int=_bounded_int)
    except (ValueError, UnicodeDecodeError, RecursionError):
        abort(400, errors={"body": ["Invalid JSON body."]})
    if not isinstance(value, dict):
        abort(400, errors={"body": ["The body must be a JSON object."]})
    return value
