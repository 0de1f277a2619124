"""Request schema of POST /retry-failed-story-sets."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates_schema


class RetryRequestSchema(Schema):
    """Which job to retry: its `result` object as served, or its id."""

    previous_result = fields.Dict(metadata={
        "description": "The job's `result` object; only its `job_id` is used, the rest is ignored"})
    job_id = fields.String(validate=validate.Length(1, 64))
    max_retries = fields.Integer(strict=True, load_default=3, validate=validate.Range(1, 10))
    wait = fields.Float(validate=validate.Range(0, 300))
    when = fields.String(load_default="now", validate=validate.OneOf(["now", "not_before"]), metadata={
        "description": "`not_before`: run the retry once the job's spent model quota is back "
                       "(`result.retry_info.not_before`); the schedule survives restarts"})

    @validates_schema
    def _one_job(self, data: dict, **_: object) -> None:
        if "job_id" not in data and "previous_result" not in data:
            raise ValidationError("Give 'job_id' or 'previous_result'.", "job_id")
        if "previous_result" in data and "job_id" not in data:
            job_id = data["previous_result"].get("job_id")
            if not isinstance(job_id, str) or not job_id:
                raise ValidationError("Must contain the job's 'job_id'.", "previous_result")
        if "previous_result" in data and "job_id" in data \
                and data["previous_result"].get("job_id") != data["job_id"]:
            raise ValidationError("Names another job than 'job_id'.", "previous_result")
