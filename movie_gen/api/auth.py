"""API keys: `Authorization: Bearer <key>` on every endpoint but health and docs, when keys are set."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from flask import Flask, g, request
from flask_smorest import abort
from limits import parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter
from werkzeug.datastructures import WWWAuthenticate
from werkzeug.exceptions import Unauthorized

from ..services import Services
from .page.views import PAGE_ENDPOINTS

PUBLIC_ENDPOINTS = {"health.Health", "api-docs.openapi_json", "api-docs.openapi_swagger_ui",
                    "docs_assets", "static", *PAGE_ENDPOINTS}  # the page asks for the key itself
SECRET_KEY = "movie_gen:server_secret"


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()


def key_id(key: str, secret: str) -> str:
    """The owner id of an API key: an HMAC with the server secret; jobs record this, never the key."""
    return hmac.new(secret.encode(), key.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:32]


def _match(presented: str, digests: tuple[bytes, ...]) -> int | None:
    """The index of the key whose digest matches; every digest is compared, all of one length."""
    found, mine = None, _digest(presented)
    for index, digest in enumerate(digests):
        if hmac.compare_digest(mine, digest):
            found = index
    return found


def server_secret(services: Services) -> str:
    """MOVIE_GEN_SECRET, or one generated once and kept in Redis for every process to share."""
    if services.settings.server_secret:
        return services.settings.server_secret
    services.store.redis.set(SECRET_KEY, secrets.token_hex(32), nx=True)
    return services.store.redis.get(SECRET_KEY)


def current_owner() -> str | None:
    """The key id of this request, or None when the API runs without keys."""
    return g.get("owner")


def client_key() -> str:
    """Who is asking, for limits: the API key's id when keys are on, else the client's address.

    The address is the socket's, or the one a trusted proxy set (TRUSTED_PROXIES, via ProxyFix).
    """
    return current_owner() or request.remote_addr or "-"


class _AuthGuard:
    """Key digests, the owner-id secret and the limit on wrong keys of one app."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.digests = tuple(_digest(k) for k in services.settings.api_keys)
        self.keys = services.settings.api_keys
        self.limit = parse(services.settings.auth_failure_limit)
        self.limiter = MovingWindowRateLimiter(storage_from_string(  # on the web's bounded pool
            services.settings.redis_url, connection_pool=services.store.redis.connection_pool))
        self._secret: str | None = None

    def owner(self, index: int) -> str:
        if self._secret is None:
            self._secret = server_secret(self.services)
        return key_id(self.keys[index], self._secret)

    def refuse_if_over_limit(self, address: str) -> None:
        if not self.limiter.test(self.limit, "movie_gen_auth_fail", address):
            reset = self.limiter.get_window_stats(self.limit, "movie_gen_auth_fail", address).reset_time
            abort(429, message=f"Too many requests with a wrong API key from this address (the limit is "
                  f"{self.limit}); try again after Retry-After seconds.",
                  headers={"Retry-After": str(max(1, int(reset - time.time()) + 1))})

    def count_failure(self, address: str) -> None:
        self.limiter.hit(self.limit, "movie_gen_auth_fail", address)


def install_auth(app: Flask, services: Services) -> None:
    """Check the bearer key before every request to a protected endpoint."""
    guard = _AuthGuard(services)

    @app.before_request
    def _authenticate():
        g.owner = None
        if not guard.digests or request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
            return None
        address = request.remote_addr or "-"
        guard.refuse_if_over_limit(address)
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        index = _match(presented.strip(), guard.digests) \
            if scheme.lower() == "bearer" and presented else None
        if index is None:
            guard.count_failure(address)
            raise Unauthorized("A valid API key is required: send 'Authorization: Bearer <key>'.",
                               www_authenticate=WWWAuthenticate("bearer"))
        g.owner = guard.owner(index)
        return None

