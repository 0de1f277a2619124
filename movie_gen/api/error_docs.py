"""Document the answers of an endpoint: every error status it can give, with the one error body."""

from __future__ import annotations

from typing import Callable

from ..export.formats import EXPORTS
from .common_schemas import ApiErrorSchema

DESCRIPTIONS = {
    400: "Invalid input; `errors` names each bad field",
    401: "Missing or wrong API key (when MOVIE_GEN_API_KEYS is set)",
    408: "The request body did not arrive within BODY_TIMEOUT_S",
    404: "No such job (or it belongs to another API key)",
    409: "The job's state does not allow this now",
    413: "The request body is too large",
    415: "The request body is not JSON",
    422: "The Idempotency-Key was used with another body",
    429: "Too many requests for this API key (or long-polls, or wrong keys); see Retry-After",
    500: "Internal error; the body names a request id",
    503: "The job store (Redis), or the output storage, is unreachable",
}
ALWAYS = (401, 429, 500, 503)  # 429: too many wrong keys from one address
POSTS = (400, 408, 413, 415, 429)


def documented_errors(blp, *codes: int) -> Callable:
    """Apply `alt_response` with the error schema for each status (plus those every endpoint has)."""
    def decorate(func: Callable) -> Callable:
        for code in sorted(set(codes) | set(ALWAYS)):
            func = blp.alt_response(code, schema=ApiErrorSchema, description=DESCRIPTIONS[code])(func)
        return func
    return decorate


EXPORTS_DESCRIPTION = ("JSON by default; with `format`, a Fountain screenplay (text/plain), the "
                       "screenplay as HTML or PDF, or a CSV shot list")


def documented_exports(blp) -> Callable:
    """Document the other content types of a 200 that `?format=` selects (see export.formats)."""
    def decorate(func: Callable) -> Callable:
        for export in EXPORTS.values():
            func = blp.alt_response(200, schema={"type": "string", "format": "binary"}, success=True,
                                    content_type=export.content_type.split(";")[0],
                                    description=EXPORTS_DESCRIPTION)(func)
        return func
    return decorate


IDEMPOTENCY_HEADER = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Replaying a request with the same key and body returns the same job without "
                   "new work; the same key with another body is refused with 422.",
}

PREFER_HEADER = {
    "in": "header", "name": "Prefer", "required": False, "schema": {"type": "string"},
    "description": "RFC 7240: `wait=N` answers 200 with the job if it ends within N s (at most "
                   "300), `respond-async` answers 202 at once. Without it (and without the body's "
                   "`wait`) the server waits SYNC_WAIT_S. `Preference-Applied` says what was applied.",
}
