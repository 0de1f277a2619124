"""GET /healthz: web up, Redis reachable, at least one worker answering."""

from __future__ import annotations

from flask import current_app, jsonify
from flask.views import MethodView

from ..blueprint import Blueprint

blp = Blueprint("health", __name__, description="Liveness of the web app, Redis and the workers")


@blp.route("/healthz")
class Health(MethodView):
    @blp.doc(security=[])
    @blp.response(200, description="Everything answers")
    @blp.alt_response(503, description="A part is missing; `checks` says which")
    def get(self):
        """Check Redis and the Celery workers (each with a short timeout)."""
        ext = current_app.extensions["movie_gen"]
        checks = {"web": "ok"}
        try:
            ext["services"].store.redis.ping()
            checks["redis"] = "ok"
        except Exception as exc:  # any failure means "not reachable"
            checks["redis"] = f"unreachable: {exc}"
        if checks["redis"] == "ok":
            try:
                replies = ext["celery"].control.ping(timeout=1.0, limit=1) or []  # first reply ends it
                checks["workers"] = f"{len(replies)} answering" if replies else "none answering"
            except Exception as exc:  # broker errors
                checks["workers"] = f"unreachable: {exc}"
        else:
            checks["workers"] = "unknown (no Redis)"
        healthy = checks["redis"] == "ok" and checks["workers"].endswith("answering") \
            and not checks["workers"].startswith("none")
        response = jsonify({"status": "ok" if healthy else "unavailable", "checks": checks})
        response.status_code = 200 if healthy else 503
        return response
