"""Schemas shared by several resources: the error body, and the job as every answer sends it (a job view)."""

from __future__ import annotations

from marshmallow import Schema, fields

from movie_gen.jobs.result_schema import Derived, ResultSchema, SetEntrySchema
from movie_gen.store.job_model import STATES


class ApiErrorSchema(Schema):
    """One error body everywhere."""

    code = fields.Integer(metadata={"example": 400})
    status = fields.String(metadata={"example": "Bad Request"})
    message = fields.String(metadata={"example": "Invalid request: total_segments"})
    errors = fields.Dict(keys=fields.String(), metadata={
        "example": {"total_segments": ["Must be greater than or equal to 1 and less than or equal to 1000."]}})
    request_id = fields.String()


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
    files = fields.String(metadata={
        "description": "Each stored file of the job is this URL followed by the last part of its "
                       "`file_path` (GET /jobs/<id>/files/<name>)", "example": "/jobs/0f5c.../files/"})
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
    created_at = fields.String(allow_none=True, attribute="record.created_at", dump_default=None)
    updated_at = fields.String(allow_none=True, attribute="record.updated_at", dump_default=None)
    result = Derived(ResultSchema)
