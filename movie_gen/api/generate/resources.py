"""POST /generate-movie-auto: validate, store the job, enqueue the pipeline, answer 202 (or 200)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort

from movie_gen.jobs.submit import submit_job
from movie_gen.storage.files import UnsafePath, check_relative_dir
from movie_gen.store.job_model import new_job_id

from ..auth import current_owner
from ..blueprint import Blueprint
from ..common_schemas import JobSchema
from ..error_docs import IDEMPOTENCY_HEADER, POSTS, PREFER_HEADER, documented_errors
from ..idempotent import run_once
from ..responses import accepted_or_finished
from .schemas import GenerateRequestSchema

blp = Blueprint("generate", __name__, description="Turn a story idea into a movie script")


@blp.route("/generate-movie-auto")
class GenerateMovie(MethodView):
    @blp.arguments(GenerateRequestSchema, example={"idea": "A lighthouse keeper finds a map inside a storm",
                                                   "total_segments": 30, "segments_per_set": 10})
    @blp.response(202, JobSchema, description="Job queued, or still running when the wait ran out; "
                  "`result` says so (`success: false`); follow `status_url`",
                  headers={"Location": {"description": "The job URL", "schema": {"type": "string"}}})
    @blp.alt_response(200, schema=JobSchema, description="The job ended within the wait")
    @documented_errors(blp, *POSTS, 422)
    @blp.doc(parameters=[IDEMPOTENCY_HEADER, PREFER_HEADER])
    def post(self, body: dict):
        """Start a job: story bible, then every set in parallel, then the summary."""
        ext = current_app.extensions["movie_gen"]
        services = ext["services"]
        wait = body.pop("wait", None)
        body["output_directory"] = check_relative_dir(body["output_directory"])
        try:
            services.storage.directory(body["output_directory"])
        except UnsafePath as exc:
            abort(400, errors={"output_directory": [str(exc)]})
        return run_once(
            services, "generate", body, new_job_id(),
            start=lambda job_id: submit_job(services, ext["celery"], body, current_owner(), job_id),
            answer=lambda job_id: accepted_or_finished(services, job_id, wait))
