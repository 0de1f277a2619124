"""The page for people: `/` (write an idea, see this key's jobs) and `/jobs/<id>/view` (one job, live).

The server renders the shell; a small script from `static/` fills it from the JSON API and the
event stream, so that with API keys the key travels in a header only. Everything that came from
a user or a model reaches the page as text (the templates escape it, the scripts set
`textContent`), and the Content-Security-Policy allows no inline script.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, current_app, render_template

from ...export.formats import FORMATS

blp = Blueprint("page", __name__, template_folder="templates", static_folder="static",
                static_url_path="/page-assets")
PAGE_ENDPOINTS = {"page.index", "page.job_page", "page.static"}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def _keys_required() -> bool:
    return bool(current_app.extensions["movie_gen"]["services"].settings.api_keys)


@blp.route("/")
def index() -> str:
    """The form for a new job and the list of this key's jobs."""
    return render_template("page/index.html", keys_required=_keys_required())


@blp.route("/jobs/<job_id>/view")
def job_page(job_id: str) -> str:
    """One job: its sets live, the attempt timeline, the bible, the screenplay, the exports."""
    if not _JOB_ID.match(job_id):
        abort(404)
    return render_template("page/job.html", job_id=job_id, formats=FORMATS,
                           keys_required=_keys_required())


@blp.after_request
def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
