"""One JSON error body for every failure; no traceback ever reaches a client."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis
from flask import Flask, current_app, jsonify, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException, InternalServerError, UnsupportedMediaType

from movie_gen.errors import StorageUnavailable

from .json_body import read_body

log = logging.getLogger(__name__)


def error_body(code: int, status: str, message: str,
               errors: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": code, "status": status, "message": message}
    if errors:
        body["errors"] = errors
    return body


def _flatten(errors: Any) -> dict[str, Any]:
    """webargs nests errors by location ({"json": {"idea": [...]}}): keep the field names."""
    if not isinstance(errors, dict):
        return {"_body": errors}
    flat: dict[str, Any] = {}
    for location, value in errors.items():
        if location in ("json", "query", "form", "path") and isinstance(value, dict):
            flat.update(value)
        else:
            flat[location] = value
    return flat


MAX_ERROR_FIELDS = 20
MAX_ERROR_TEXT = 300


def _capped(errors: dict[str, Any]) -> dict[str, Any]:
    """At most MAX_ERROR_FIELDS fields, each message cut short: a huge body gets a small answer."""
    capped = {str(k)[:100]: (v if len(repr(v)) <= MAX_ERROR_TEXT else [repr(v)[:MAX_ERROR_TEXT] + "…"])
              for k, v in list(errors.items())[:MAX_ERROR_FIELDS]}
    if len(errors) > MAX_ERROR_FIELDS:
        capped["_more"] = [f"{len(errors) - MAX_ERROR_FIELDS} more fields have errors."]
    return capped


def _summary(errors: dict[str, Any]) -> str:
    parts = []
    for field, problems in errors.items():
        text = problems[0] if isinstance(problems, list) and problems else problems
        parts.append(f"{field}: {text}")
    return "Invalid request: " + "; ".join(parts)


class MovieGenApi(Api):
    """flask-smorest's Api with our error body, and no catch-all `default` response documented."""

    DEFAULT_ERROR_RESPONSE_NAME = None

    def handle_http_exception(self, error: HTTPException):  # type: ignore[override]
        data = getattr(error, "data", None) or {}
        errors = data.get("errors") or data.get("messages")
        flat = _capped(_flatten(errors)) if errors else None
        message = data.get("message") or (_summary(flat) if flat else error.description)
        if error.code == 429 and not data.get("message"):
            message = (f"Too many requests: the limit is {error.description} for each client; "
                       "try again after Retry-After seconds.")
        if error.code == 413 and not data.get("message"):
            message = (f"The request body is larger than the limit of "
                       f"{current_app.config['MAX_CONTENT_LENGTH']} bytes (MAX_REQUEST_BYTES).")
            flat = {"body": [message]}
        body = error_body(error.code or 500, error.name, message, flat)
        if isinstance(error, InternalServerError):
            request_id = uuid.uuid4().hex[:12]
            original = getattr(error, "original_exception", None)
            log.error("internal error on %s %s", request.method, request.path,
                      exc_info=original, extra={"request_id": request_id})
            body["message"] = "Internal server error; quote the request id when reporting it."
            body["request_id"] = request_id
        response = jsonify(body)
        response.status_code = error.code or 500
        for name, value in error.get_headers():  # Allow (405), WWW-Authenticate (401), ...
            if name.lower() != "content-type":
                response.headers[name] = value
        for name, value in (data.get("headers") or {}).items():
            response.headers[name] = value
        return response


def register_error_handlers(app: Flask) -> None:
    """JSON for a down job store or output storage, and for POST bodies that are not JSON."""

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    @app.errorhandler(StorageUnavailable)
    def _store_unavailable(exc: Exception):
        what = "The output storage" if isinstance(exc, StorageUnavailable) else "The job store (Redis)"
        log.error("%s is unavailable: %s", what, exc)
        response = jsonify(error_body(503, "Service Unavailable", f"{what} is unreachable; try again shortly."))
        response.status_code = 503
        return response

    @app.before_request
    def _require_json_body():
        has_body = request.content_length or request.headers.get("Transfer-Encoding")
        if request.method == "POST" and has_body:
            if not request.is_json:
                raise UnsupportedMediaType("The request body must be JSON (Content-Type: application/json).")
            read_body(request)  # now, under BODY_TIMEOUT_S, so that a slow body holds nothing long
