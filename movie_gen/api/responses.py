"""The job as every answer sends it, and the wait of the endpoints that start work (RFC 7240 Prefer)."""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, request, url_for
from flask_smorest import abort

from movie_gen.jobs.job_view import View, job_view
from movie_gen.jobs.submit import SETS_PAGE
from movie_gen.storage.object_store import locator
from movie_gen.store.job_model import FINAL_STATES

from ..export.formats import FORMATS
from ..services import Services
from .auth import client_key
from .long_polls import long_poll_slot, wait_for_final

MAX_POST_WAIT_S = 300
_WAIT = re.compile(r"^wait\s*(?:=\s*\"?(\d{1,6})\"?)?$", re.IGNORECASE)


def job_links(job_id: str) -> dict[str, Any]:
    """The job's own URL, its event stream, its files (`files` + a file's name) and its script in
    every download format."""
    status_url = url_for("jobs.Job", job_id=job_id)
    return {"self": status_url, "events": f"{status_url}/events", "files": f"{status_url}/files/",
            "exports": {fmt: url_for("jobs.Script", job_id=job_id, format=fmt) for fmt in FORMATS}}


def job_answer(services: Services, job: dict[str, Any], history: bool = False) -> View:
    """The job with its links and its files' locations, as the JobSchema serializes it; `history`
    adds every attempt."""
    links = job_links(job["job_id"])
    files = locator(services.storage, links["files"])
    return job_view(job, history, links, services.settings, locate=files)


def preferred_wait(body_wait: float | None, default_s: float) -> tuple[float, str | None]:
    """Seconds to wait, and the preference applied: the body's `wait`, else `Prefer`, else SYNC_WAIT_S.

    `Prefer: respond-async` answers at once; `Prefer: wait=N` waits up to N s (at most 300);
    a bare `wait` (as Replicate's API takes it) waits the longest. Other preferences are ignored.
    """
    if body_wait is not None:
        return body_wait, None
    wait: float | None = None
    is_async = False
    for header in request.headers.getlist("Prefer"):
        for token in header.split(","):
            token = token.split(";")[0].strip()
            match = _WAIT.match(token)
            if match:
                wait = min(MAX_POST_WAIT_S, int(match.group(1))) if match.group(1) else MAX_POST_WAIT_S
            elif token.lower() == "respond-async":
                is_async = True
    if wait is not None:
        return float(wait), f"wait={int(wait)}"
    if is_async:
        return 0.0, "respond-async"
    return default_s, None


def accepted_or_finished(services: Services, job_id: str, body_wait: float | None):
    """200 with the job if it ends within the wait, else 202 with it as it is (`result` included)."""
    wait, applied = preferred_wait(body_wait, services.settings.sync_wait_s)
    job = None
    if wait:
        with long_poll_slot(services, client_key(), wait) as taken:
            if taken:  # over the cap the job still starts: it is answered at once
                job = wait_for_final(services, current_app.extensions["movie_gen"]["events"], job_id, wait)
    job = job or services.store.get_page(job_id, 1, SETS_PAGE)
    if job is None:
        abort(404, message=f"No job with id {job_id!r}.")
    status_url = url_for("jobs.Job", job_id=job_id)
    headers = {"Location": status_url}
    if applied:
        headers["Preference-Applied"] = applied
    code = 200 if wait and job["state"] in FINAL_STATES else 202
    return job_answer(services, job, history=True), code, headers
