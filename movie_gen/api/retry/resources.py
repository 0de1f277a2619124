"""POST /retry-failed-story-sets: regenerate only the failed sets from the stored story bible."""

from __future__ import annotations

from flask import current_app
from flask.views import MethodView
from flask_smorest import abort

from movie_gen.jobs.retries import RetryConflict, schedule_retry, start_retry
from movie_gen.jobs.submit import find_job

from ..auth import current_owner
from ..blueprint import Blueprint
from ..common_schemas import JobSchema
from ..error_docs import IDEMPOTENCY_HEADER, POSTS, PREFER_HEADER, documented_errors
from ..idempotent import run_once
from ..responses import accepted_or_finished
from .schemas import RetryRequestSchema

blp = Blueprint("retry", __name__, description="Regenerate the failed sets of a job")


@blp.route("/retry-failed-story-sets")
class RetryFailedSets(MethodView):
    @blp.arguments(RetryRequestSchema, example={"job_id": "5a77e30763b64ecf89ed1f3ae3965b09",
                                                "max_retries": 3})
    @blp.response(202, JobSchema, description="Retry queued, or still running when the wait ran out; "
                  "`result` says so (`success: false`); follow `status_url`",
                  headers={"Location": {"description": "The job URL", "schema": {"type": "string"}}})
    @blp.alt_response(200, schema=JobSchema, description="The job ended within the wait")
    @documented_errors(blp, *POSTS, 404, 409, 422)
    @blp.doc(parameters=[IDEMPOTENCY_HEADER, PREFER_HEADER])
    def post(self, body: dict):
        """Re-run only the sets that did not succeed (the bible and every set if the bible failed).

        Only the `job_id` of `previous_result` is used: the stored job decides which sets run and
        where their files go.
        """
        ext = current_app.extensions["movie_gen"]
        services = ext["services"]
        job_id = body.get("job_id") or body["previous_result"]["job_id"]
        job = find_job(services, job_id, current_owner())
        if job is None:
            abort(404, message=f"No job with id {job_id!r}.")
        wait = body.pop("wait", None)

        def start(_: str) -> None:
            try:
                if body["when"] == "not_before":
                    schedule_retry(services, ext["celery"], job_id, body["max_retries"])
                else:
                    start_retry(services, ext["celery"], job_id, body["max_retries"])
            except RetryConflict as exc:
                abort(409, message=str(exc))

        key = {"job_id": job_id, "max_retries": body["max_retries"], "when": body["when"]}
        return run_once(services, "retry", key,
                        job_id, start=start,
                        answer=lambda _: accepted_or_finished(services, job_id, wait))
