"""GET /jobs/<job_id>: state, progress and the result so far (long-polls with `wait`)."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort

from ..blueprint import Blueprint

from ...jobs import find_job, job_view, wait_for_final
from ..common_schemas import ApiErrorSchema, JobSchema
from .schemas import JobQuerySchema

blp = Blueprint("jobs", __name__, description="Follow a job")


@blp.route("/jobs/<job_id>")
class Job(MethodView):
    @blp.arguments(JobQuerySchema, location="query")
    @blp.response(200, JobSchema)
    @blp.alt_response(400, schema=ApiErrorSchema, description="Invalid `wait`")
    @blp.alt_response(404, schema=ApiErrorSchema, description="No job with this id")
    def get(self, query: dict, job_id: str):
        """The job's state, per-set progress and result (partial while it runs)."""
        services = current_app.extensions["movie_gen"]["services"]
        job = find_job(services, job_id)
        if job is None:
            abort(404, message=f"No job with id {job_id!r}.")
        if query.get("wait"):
            job = wait_for_final(services, job_id, query["wait"]) or job
        return job_view(job)
