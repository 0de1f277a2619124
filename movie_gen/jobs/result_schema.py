"""The `result` object of a job, serialized from a job view by the schemas that document it.

The job URL nests it, and the pipeline's callback returns it (Flower shows it). The parts that sum
up the whole job (`generation_summary`, `retry_info`, ...) read the same view as the result.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields

from movie_gen.jobs.job_view import RETRY_ENDPOINT, job_view


class Derived(fields.Nested):
    """A nested part computed from the parent's view itself, not from one of its attributes."""

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = None) -> Any:
        return obj


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
    error = fields.String()


class GenerationSummarySchema(Schema):
    total_segments_requested = fields.Integer(attribute="record.request.total_segments")
    total_segments_generated = fields.Integer(attribute="segments_generated")
    total_sets_requested = fields.Integer(attribute="progress.sets_total")
    successful_sets = fields.Integer(attribute="progress.sets_succeeded")
    failed_sets = fields.Integer(attribute="progress.sets_failed")
    failed_set_numbers = fields.List(fields.Integer(), attribute="failed_numbers")
    cancelled_set_numbers = fields.List(fields.Integer(), attribute="cancelled_numbers")


class RetryResultSchema(Schema):
    set_number = fields.Integer()
    status = fields.String()
    segments_generated = fields.Integer()


class RetryInfoSchema(Schema):
    can_retry = fields.Boolean()
    failed_sets = fields.List(fields.Integer(), attribute="failed_numbers")
    retry_endpoint = fields.Constant(RETRY_ENDPOINT, metadata={"type": "string", "example": RETRY_ENDPOINT})
    retry_performed = fields.Boolean(attribute="record.retry.retry_performed")
    retry_timestamp = fields.String(attribute="record.retry.retry_timestamp")
    retried_sets = fields.List(fields.Integer(), attribute="record.retry.retried_sets")
    retry_count = fields.Integer(attribute="record.retry.retry_count")
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
    story_title = fields.String(allow_none=True, attribute="record.title", dump_default=None)
    logline = fields.String()
    provider = fields.String(allow_none=True, attribute="record.provider", dump_default=None, metadata={
        "description": "`openai`, or `offline` for the built-in demo writer"})
    output_mode = fields.String(allow_none=True, attribute="record.output_mode", dump_default=None, metadata={
        "description": "How the model server was asked for JSON (json_schema, json_object or prompt), "
                       "then in brackets the context size per request and where it was read, e.g. "
                       "\"json_object (context 8192 tokens per request, from GET /v1/models meta.n_ctx)\" "
                       "(null for the offline writer)"})
    generation_summary = Derived(GenerationSummarySchema)
    retry_info = Derived(RetryInfoSchema)
    sets = fields.List(fields.Nested(SetEntrySchema))
    story_bible = fields.Nested(BibleStatusSchema)
    token_usage = fields.Nested(TokenUsageSchema)
    retry_statistics = Derived(RetryStatisticsSchema)
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


def result_of(job: dict[str, Any]) -> dict[str, Any]:
    """The whole `result` of a job record, with every attempt (what the callback returns)."""
    return ResultSchema().dump(job_view(job))
