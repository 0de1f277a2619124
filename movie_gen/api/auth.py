"""API keys: `Authorization: Bearer <key>` on every endpoint but health and docs, when keys are set."""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask, current_app, g, request
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

PUBLIC_ENDPOINTS = {"health.Health", "api-docs.openapi_json", "api-docs.openapi_swagger_ui",
                    "docs_assets", "static"}


def key_id(key: str) -> str:
    """A stable, non-reversible id of an API key: jobs record this, never the key."""
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _match(presented: str, keys: tuple[str, ...]) -> str | None:
    found = None
    for key in keys:  # compare with every key, in constant time, so timing tells nothing
        if hmac.compare_digest(presented.encode(), key.encode()):
            found = key
    return found


def current_owner() -> str | None:
    """The key id of this request, or None when the API runs without keys."""
    return g.get("owner")


def install_auth(app: Flask) -> None:
    """Check the bearer key before every request to a protected endpoint."""

    @app.before_request
    def _authenticate():
        keys = current_app.extensions["movie_gen"]["services"].settings.api_keys
        g.owner = None
        if not keys or request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        key = _match(presented.strip(), keys) if scheme.lower() == "bearer" and presented else None
        if key is None:
            raise Unauthorized("A valid API key is required: send 'Authorization: Bearer <key>'.",
                               www_authenticate=WWWAuthenticate("bearer"))
        g.owner = key_id(key)
        return None
