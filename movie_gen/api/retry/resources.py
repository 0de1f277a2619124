"""POST /retry-failed-story-sets: regenerate only the failed sets from the stored story bible."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort

from ...jobs import find_job
from ...retries import RetryConflict, start_retry
from ..blueprint import Blueprint
from ..common_schemas import ApiErrorSchema, JobAcceptedSchema, JobFinishedSchema
from ..responses import accepted_or_finished
from .schemas import RetryRequestSchema

blp = Blueprint("retry", __name__, description="Regenerate the failed sets of a job")


@blp.route("/retry-failed-story-sets")
class RetryFailedSets(MethodView):
    @blp.arguments(RetryRequestSchema, example={"job_id": "0f5c2e9a...", "max_retries": 3})
    @blp.response(202, JobAcceptedSchema, description="Retry queued; poll `status_url`")
    @blp.alt_response(200, schema=JobFinishedSchema, description="With `wait`: the retry ended in time")
    @blp.alt_response(400, schema=ApiErrorSchema, description="Invalid field(s)")
    @blp.alt_response(404, schema=ApiErrorSchema, description="No such job")
    @blp.alt_response(409, schema=ApiErrorSchema,
                      description="Still running, nothing failed, or a retry already running")
    def post(self, body: dict):
        """Re-run only the failed sets (the bible and every set if the bible failed)."""
        ext = current_app.extensions["movie_gen"]
        job_id = body.get("job_id") or body["previous_result"]["job_id"]
        job = find_job(ext["services"], job_id)
        if job is None:
            abort(404, message=f"No job with id {job_id!r}.")
        try:
            start_retry(ext["services"], ext["celery"], job, body["max_retries"])
        except RetryConflict as exc:
            abort(409, message=str(exc))
        return accepted_or_finished(ext["services"], job_id, body.get("wait"))
