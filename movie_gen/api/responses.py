"""The 202-or-200 answer shared by the endpoints that start work."""

from __future__ import annotations

from flask import Response, jsonify, url_for

from ..assembly import build_result
from ..job_store import FINAL_STATES
from ..jobs import wait_for_final
from ..services import Services


def accepted_or_finished(services: Services, job_id: str, wait: float | None) -> Response:
    """200 with the result if the job ends within `wait` seconds, else 202 with the job URL."""
    status_url = url_for("jobs.Job", job_id=job_id)
    if wait:
        job = wait_for_final(services, job_id, wait)
        if job is not None and job["state"] in FINAL_STATES:
            return jsonify({"job_id": job_id, "state": job["state"], "result": build_result(job)})
    job = services.store.get_page(job_id, 1, 0)
    response = jsonify({"job_id": job_id, "status": job["state"] if job else "queued",
                        "status_url": status_url})
    response.status_code = 202
    response.headers["Location"] = status_url
    return response
