"""/jobs: list jobs, follow one (long-poll with `wait`), cancel it, read its assembled script."""

from __future__ import annotations

from flask import Response, current_app, request, url_for
from flask.views import MethodView
from flask_smorest import abort

from movie_gen.jobs.cancellation import CancelConflict, cancel_job
from movie_gen.jobs.job_view import job_view, progress_of
from movie_gen.jobs.submit import find_job
from movie_gen.storage.object_store import locator
from movie_gen.store.units import read_status_line
from movie_gen.story.script import assemble_script

from ...export.formats import EXPORTS, file_name
from ..auth import client_key, current_owner
from ..blueprint import Blueprint
from ..common_schemas import JobSchema, SetsPageSchema
from ..error_docs import EXPORTS_DESCRIPTION, documented_errors, documented_exports
from ..long_polls import long_poll_slot, wait_for_final
from ..responses import job_answer, job_links
from .schemas import (
    JobListQuerySchema,
    JobListSchema,
    JobQuerySchema,
    ScriptQuerySchema,
    ScriptSchema,
    SetsQuerySchema,
)

blp = Blueprint("jobs", __name__, description="Follow, list and cancel jobs")
MAX_JOB_ID = 64  # as the retry endpoint's `job_id`; ids are 32 hexadecimal characters


@blp.before_request
def _bounded_job_id():
    """An over-long job id is a 400 naming `job_id`, not a 404 that echoes it whole."""
    job_id = (request.view_args or {}).get("job_id", "")
    if len(job_id) > MAX_JOB_ID:
        abort(400, errors={"job_id": [f"Longer than {MAX_JOB_ID} characters ({len(job_id)}); "
                                      "job ids are 32 hexadecimal characters."]})


def _services():
    return current_app.extensions["movie_gen"]["services"]


def _hub():
    return current_app.extensions["movie_gen"]["events"]


def _job_or_404(job_id: str) -> dict:
    job = find_job(_services(), job_id, current_owner())
    if job is None:
        abort(404, message=f"No job with id {job_id!r}.")
    return job


@blp.route("/jobs")
class Jobs(MethodView):
    @blp.arguments(JobListQuerySchema, location="query")
    @blp.response(200, JobListSchema)
    @documented_errors(blp, 400)
    def get(self, query: dict):
        """Jobs, most recent first; `state` filters, `cursor` pages."""
        cursor = None
        if query.get("cursor"):
            score, _, job_id = query["cursor"].partition("~")
            cursor = (float(score), job_id)
        rows, after = _services().store.list_jobs(current_owner(), query.get("state"),
                                                  query["limit"], cursor)
        store = _services().store
        pipe = store.redis.pipeline(transaction=False)
        for row in rows:
            pipe.get(store.keys(row["job_id"])[4])
        for row, line in zip(rows, pipe.execute()):
            row["status_url"] = url_for("jobs.Job", job_id=row["job_id"])
            row["progress"] = progress_of(list(read_status_line(line or "", row["sets_total"])[0].values()))
        return {"jobs": rows, "next_cursor": f"{after[0]:.6f}~{after[1]}" if after else None}


@blp.route("/jobs/<job_id>")
class Job(MethodView):
    @blp.arguments(JobQuerySchema, location="query")
    @blp.response(200, JobSchema)
    @documented_errors(blp, 400, 404, 429)
    def get(self, query: dict, job_id: str):
        """The job's state, per-set progress and result (partial while it runs)."""
        job = _job_or_404(job_id)
        wait = query.get("wait")
        if wait:
            with long_poll_slot(_services(), client_key(), wait) as taken:
                if not taken:
                    abort(429, message=f"Too many long-polls at once for this client (the limit is "
                          f"{_services().settings.long_polls_per_key}); try again after Retry-After "
                          "seconds.", headers={"Retry-After": "1"})
                job = wait_for_final(_services(), _hub(), job_id, wait) or job
        return job_answer(_services(), job, query["history"])


@blp.route("/jobs/<job_id>/sets")
class JobSets(MethodView):
    @blp.arguments(SetsQuerySchema, location="query")
    @blp.response(200, SetsPageSchema)
    @documented_errors(blp, 400, 404)
    def get(self, query: dict, job_id: str):
        """The job's sets with every attempt, a page at a time (`cursor` is a set number)."""
        job = find_job(_services(), job_id, current_owner(), query["cursor"], query["limit"])
        if job is None:
            abort(404, message=f"No job with id {job_id!r}.")
        files = locator(_services().storage, job_links(job_id)["files"])
        return job_view(job, limit=query["limit"], locate=files)


@blp.route("/jobs/<job_id>/cancel")
class CancelJob(MethodView):
    @blp.response(200, JobSchema, description="The job: `cancelled`, or `cancelling` while a set "
                  "that was running at the cancel finishes (it turns `cancelled` then)")
    @documented_errors(blp, 400, 404, 409, 415, 429)
    def post(self, job_id: str):
        """Cancel a running job: waiting sets are revoked, a running set may finish, files are kept.

        Once the job is `cancelled` nothing of it changes any more: no file, record or timestamp.
        """
        job = _job_or_404(job_id)
        try:
            cancel_job(_services(), current_app.extensions["movie_gen"]["celery"], job)
        except CancelConflict as exc:
            abort(409, message=str(exc))
        return job_answer(_services(), find_job(_services(), job_id) or job)


@blp.route("/jobs/<job_id>/script")
class Script(MethodView):
    @blp.arguments(ScriptQuerySchema, location="query")
    @blp.response(200, ScriptSchema, description=EXPORTS_DESCRIPTION)
    @documented_exports(blp)
    @documented_errors(blp, 400, 404)
    def get(self, query: dict, job_id: str):
        """The assembled script (bible and segments in order), or a screenplay or shot list of it."""
        _job_or_404(job_id)  # restores the job from disk if Redis lost it, checks its owner
        job = _services().store.get(job_id)
        if job is None:
            abort(404, message=f"No job with id {job_id!r}.")
        script = assemble_script(_services().store, _services().storage, job)
        export = EXPORTS.get(query["format"])
        if export is None:
            return script
        headers = {"Content-Disposition": f'{export.disposition}; filename="{file_name(script, query["format"])}"'}
        if query["format"] == "html":  # a page of model text: it may style itself, never run a script
            headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        return Response(export.render(script), content_type=export.content_type, headers=headers)
