"""Schemas shared by several resources: the error body, the job view and its result."""

from __future__ import annotations

from marshmallow import Schema, fields

from ..job_store import STATES


class ApiErrorSchema(Schema):
    """One error body everywhere."""

    code = fields.Integer(metadata={"example": 400})
    status = fields.String(metadata={"example": "Bad Request"})
    message = fields.String(metadata={"example": "Invalid request: total_segments"})
    errors = fields.Dict(keys=fields.String(), metadata={
        "example": {"total_segments": ["Must be greater than or equal to 1 and less than or equal to 1000."]}})
    request_id = fields.String()


class SetEntrySchema(Schema):
    set_number = fields.Integer()
    status = fields.String(metadata={"example": "success"})
    segments_count = fields.Integer()
    segments_requested = fields.Integer()
    first_segment = fields.Integer()
    last_segment = fields.Integer()
    attempts = fields.Integer()
    attempt_history = fields.List(fields.Dict(), metadata={
        "description": "Every attempt: run, attempt, started_at, finished_at, outcome, error_class, "
                       "error, delay_s (the wait chosen before the next attempt)"})
    file_path = fields.String(metadata={"example": "generated_movie_script/Your_Story_Title_set_01.json"})
    error = fields.String()


class ResultSchema(Schema):
    """The `result` object of a job (fields may be added, none renamed)."""

    success = fields.Boolean()
    job_id = fields.String()
    story_title = fields.String(allow_none=True)
    logline = fields.String()
    provider = fields.String(allow_none=True, metadata={
        "description": "`openai`, or `offline` for the built-in demo writer"})
    generation_summary = fields.Dict()
    retry_info = fields.Dict()
    sets = fields.List(fields.Nested(SetEntrySchema))
    story_bible = fields.Dict()
    token_usage = fields.Dict()
    retry_statistics = fields.Dict()
    metadata_file = fields.String()
    error = fields.String()
    sets_next = fields.String(allow_none=True, metadata={
        "description": "The URL of the next page of sets, when the job has more sets than shown"})


class SetsPageSchema(Schema):
    """GET /jobs/<job_id>/sets: one page of sets with their attempt history."""

    job_id = fields.String()
    sets = fields.List(fields.Nested(SetEntrySchema))
    next_cursor = fields.String(allow_none=True, metadata={"description": "null on the last page"})


class ProgressSchema(Schema):
    sets_total = fields.Integer()
    sets_succeeded = fields.Integer()
    sets_failed = fields.Integer()
    sets_pending = fields.Integer()
    sets_cancelled = fields.Integer()


class JobSchema(Schema):
    """GET /jobs/<job_id>."""

    job_id = fields.String()
    state = fields.String(metadata={"enum": list(STATES)})
    progress = fields.Nested(ProgressSchema)
    stalled = fields.Dict(metadata={"description": "Present when a running job has made no progress "
                                    "for longer than STALL_TIMEOUT_S: its tasks were lost; retry it"})
    created_at = fields.String()
    updated_at = fields.String()
    result = fields.Nested(ResultSchema)


class JobAcceptedSchema(Schema):
    """202: the job is queued; poll `status_url`."""

    job_id = fields.String()
    status = fields.String(metadata={"example": "queued"})
    status_url = fields.String(metadata={"example": "/jobs/0f5c..."})


class JobFinishedSchema(Schema):
    """200 (with `wait`): the job ended within the wait."""

    job_id = fields.String()
    state = fields.String()
    result = fields.Nested(ResultSchema)
