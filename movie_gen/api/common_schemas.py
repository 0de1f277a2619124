"""Schemas shared by several resources: the error body, and the one job view every answer sends."""

from __future__ import annotations

from marshmallow import Schema, fields

from movie_gen.store.job_store import STATES


class ApiErrorSchema(Schema):
    """One error body everywhere."""

    code = fields.Integer(metadata={"example": 400})
    status = fields.String(metadata={"example": "Bad Request"})
    message = fields.String(metadata={"example": "Invalid request: total_segments"})
    errors = fields.Dict(keys=fields.String(), metadata={
        "example": {"total_segments": ["Must be greater than or equal to 1 and less than or equal to 1000."]}})
    request_id = fields.String()


class AttemptSchema(Schema):
    """One attempt of a set or of the story bible."""

    run = fields.Integer(metadata={"description": "1 for the job's first run, +1 per retry"})
    attempt = fields.Integer()
    started_at = fields.String()
    finished_at = fields.String()
    outcome = fields.String(metadata={"example": "error"})
    error_class = fields.String(allow_none=True)
    error = fields.String(allow_none=True)
    delay_s = fields.Float(allow_none=True, metadata={"description": "The wait chosen before the next attempt"})
    delivery = fields.Integer(metadata={"description": "Which delivery of this attempt (a worker lost "
                                        "during an attempt leaves a `worker_lost` entry)"})
    token_usage = fields.Dict(keys=fields.String(), values=fields.Integer(), allow_none=True, metadata={
        "description": "Tokens and calls of this attempt; null when unknown (a call that timed out)"})


class SetEntrySchema(Schema):
    set_number = fields.Integer()
    status = fields.String(metadata={"example": "success"})
    segments_count = fields.Integer()
    segments_requested = fields.Integer()
    first_segment = fields.Integer()
    last_segment = fields.Integer()
    attempts = fields.Integer()
    attempt_history = fields.List(fields.Nested(AttemptSchema))
    token_usage = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "Tokens and calls of the set's successful attempt"})
    file_path = fields.String(metadata={"example": "generated_movie_script/Your_Story_Title_set_01.json",
                                        "description": "Relative to OUTPUT_ROOT, or to OUTPUT_URL's prefix"})
    file_url = fields.String(metadata={
        "description": "The object URL, when the files are in object storage (OUTPUT_URL)",
        "example": "s3://movie-gen/scripts/generated_movie_script/Your_Story_Title_set_01.json"})
    download_url = fields.String(metadata={
        "description": "The file through this API (GET /jobs/<id>/files/<name>)",
        "example": "/jobs/0f5c.../files/Your_Story_Title_set_01.json"})
    error = fields.String()


class GenerationSummarySchema(Schema):
    total_segments_requested = fields.Integer()
    total_segments_generated = fields.Integer()
    total_sets_requested = fields.Integer()
    successful_sets = fields.Integer()
    failed_sets = fields.Integer()
    failed_set_numbers = fields.List(fields.Integer())
    cancelled_set_numbers = fields.List(fields.Integer())


class RetryResultSchema(Schema):
    set_number = fields.Integer()
    status = fields.String()
    segments_generated = fields.Integer()


class RetryInfoSchema(Schema):
    can_retry = fields.Boolean()
    failed_sets = fields.List(fields.Integer())
    retry_endpoint = fields.String(metadata={"example": "/retry-failed-story-sets"})
    retry_performed = fields.Boolean()
    retry_timestamp = fields.String()
    retried_sets = fields.List(fields.Integer())
    retry_count = fields.Integer()
    retry_results = fields.List(fields.Nested(RetryResultSchema))
    not_before = fields.String(metadata={
        "description": "The model's quota ran out: no retry can succeed before this time (UTC)"})
    scheduled_at = fields.String(metadata={
        "description": "A retry is scheduled for this time (`\"when\": \"not_before\"`)"})


class TokenUsageSchema(Schema):
    model_calls = fields.Integer()
    prompt_tokens = fields.Integer()
    completion_tokens = fields.Integer()
    total_tokens = fields.Integer()


class RetryStatisticsSchema(Schema):
    attempts_per_set = fields.Dict(keys=fields.String(), values=fields.Integer(), metadata={
        "description": "Set number → attempts"})
    total_retries = fields.Integer()


class BibleStatusSchema(Schema):
    status = fields.String()
    attempts = fields.Integer()
    attempt_history = fields.List(fields.Nested(AttemptSchema))


class ResultSchema(Schema):
    """The `result` object of a job (fields may be added, none renamed)."""

    success = fields.Boolean(metadata={"description": "True only once every set has succeeded"})
    job_id = fields.String()
    status_url = fields.String(metadata={"description": "The job URL (follow it while the job runs)"})
    story_title = fields.String(allow_none=True)
    logline = fields.String()
    provider = fields.String(allow_none=True, metadata={
        "description": "`openai`, or `offline` for the built-in demo writer"})
    output_mode = fields.String(allow_none=True, metadata={
        "description": "How the model server was asked for JSON (json_schema, json_object or prompt), "
                       "then in brackets the context size per request and where it was read, e.g. "
                       "\"json_object (context 8192 tokens per request, from GET /v1/models meta.n_ctx)\" "
                       "(null for the offline writer)"})
    generation_summary = fields.Nested(GenerationSummarySchema)
    retry_info = fields.Nested(RetryInfoSchema)
    sets = fields.List(fields.Nested(SetEntrySchema))
    story_bible = fields.Nested(BibleStatusSchema)
    token_usage = fields.Nested(TokenUsageSchema)
    retry_statistics = fields.Nested(RetryStatisticsSchema)
    metadata_file = fields.String(metadata={"example": "generated_movie_script/Your_Story_Title_metadata.json"})
    metadata_file_url = fields.String(metadata={
        "description": "The metadata file's object URL, when the files are in object storage"})
    metadata_download_url = fields.String(metadata={
        "description": "The metadata file through this API (GET /jobs/<id>/files/<name>)"})
    error = fields.String()
    warnings = fields.List(fields.String(), metadata={
        "description": "What the user should know that did not stop the job, e.g. a metadata file "
                       "that could not be written"})
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


class StalledSchema(Schema):
    idle_s = fields.Integer()
    message = fields.String()


class ExportLinksSchema(Schema):
    """The job's script in each download format (`/jobs/<id>/script?format=`)."""

    json = fields.String(metadata={"example": "/jobs/0f5c.../script?format=json"})
    fountain = fields.String(metadata={"example": "/jobs/0f5c.../script?format=fountain"})
    html = fields.String(metadata={"example": "/jobs/0f5c.../script?format=html"})
    pdf = fields.String(metadata={"example": "/jobs/0f5c.../script?format=pdf"})
    csv = fields.String(metadata={"example": "/jobs/0f5c.../script?format=csv"})


class JobLinksSchema(Schema):
    """Where to follow the job and download what it wrote (paths on this server)."""

    self = fields.String(metadata={"example": "/jobs/0f5c..."})
    events = fields.String(metadata={"description": "A server-sent event stream of the job's changes",
                                     "example": "/jobs/0f5c.../events"})
    exports = fields.Nested(ExportLinksSchema)


class JobSchema(Schema):
    """The job, as every answer sends it: POST (202, or 200 with a wait), GET and cancel."""

    job_id = fields.String()
    state = fields.String(metadata={"enum": list(STATES)})
    status_url = fields.String(metadata={"example": "/jobs/0f5c..."})
    links = fields.Nested(JobLinksSchema)
    progress = fields.Nested(ProgressSchema)
    stalled = fields.Nested(StalledSchema, metadata={
        "description": "Present when a running job has made no progress for longer than "
                       "STALL_TIMEOUT_S: its tasks were lost; retry it"})
    created_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)
    result = fields.Nested(ResultSchema)
