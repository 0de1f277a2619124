"""Run a POST handler at most once per Idempotency-Key and body."""

from __future__ import annotations

from typing import Any, Callable

from flask import Response, request
from flask_smorest import abort

from movie_gen.store.idempotency import IdempotencyConflict

from ..services import Services
from .auth import current_owner


def idempotency_key() -> str | None:
    """The request's Idempotency-Key header, checked (400 when empty or longer than 255)."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        abort(400, errors={"Idempotency-Key": ["Must be 1 to 255 characters."]})
    return key


def run_once(services: Services, scope: str, body: dict[str, Any], job_id: str,
             start: Callable[[str], Any], answer: Callable[[str], Response]) -> Response:
    """`start(job_id)` unless this key and body were seen before; then `answer(job_id)` either way."""
    key = idempotency_key()
    if key is None:
        start(job_id)
        return answer(job_id)
    owner = current_owner()
    try:
        job_id, fresh = services.idempotency.claim(owner, scope, key, body, job_id,
                                                   job_exists=services.store.exists)
    except IdempotencyConflict as exc:
        abort(422, message=str(exc))
    if fresh:
        try:
            start(job_id)
        except BaseException:
            services.idempotency.release(owner, scope, key, job_id)
            raise
    return answer(job_id)
