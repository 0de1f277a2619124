"""POST /generate-movie-auto: validate, store the job, enqueue the pipeline, answer 202 (or 200)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort

from ..blueprint import Blueprint

from ...files import UnsafePath, check_relative_dir, resolve_under
from ...jobs import submit_job
from ..common_schemas import ApiErrorSchema, JobAcceptedSchema, JobFinishedSchema
from ..responses import accepted_or_finished
from .schemas import GenerateRequestSchema

blp = Blueprint("generate", __name__, description="Turn a story idea into a movie script")


@blp.route("/generate-movie-auto")
class GenerateMovie(MethodView):
    @blp.arguments(GenerateRequestSchema, example={"idea": "A lighthouse keeper finds a map inside a storm",
                                                   "total_segments": 30, "segments_per_set": 10})
    @blp.response(202, JobAcceptedSchema, description="Job queued; poll `status_url`",
                  headers={"Location": {"description": "The job URL", "schema": {"type": "string"}}})
    @blp.alt_response(200, schema=JobFinishedSchema, description="With `wait`: the job ended in time")
    @blp.alt_response(400, schema=ApiErrorSchema, description="Invalid field(s), named in `errors`")
    @blp.alt_response(415, schema=ApiErrorSchema, description="The body is not JSON")
    def post(self, body: dict):
        """Start a job: story bible, then every set in parallel, then the summary."""
        services = current_app.extensions["movie_gen"]["services"]
        wait = body.pop("wait", None)
        body["output_directory"] = check_relative_dir(body["output_directory"])
        try:
            resolve_under(services.settings.output_root, body["output_directory"])
        except UnsafePath as exc:
            abort(400, errors={"output_directory": [str(exc)]})
        job_id = submit_job(services, current_app.extensions["movie_gen"]["celery"], body)
        return accepted_or_finished(services, job_id, wait)


