"""Schemas of the /jobs resources."""

from marshmallow import Schema, fields, validate

from movie_gen.store.job_model import STATES

from ...export.formats import FORMATS
from ..common_schemas import ProgressSchema


class JobQuerySchema(Schema):
    wait = fields.Float(validate=validate.Range(0, 60), metadata={
        "description": "Long-poll: return as soon as the job ends, or after this many seconds"})
    history = fields.Boolean(load_default=False, metadata={
        "description": "Include each shown set's attempt history (also at /jobs/<id>/sets)"})


class SetsQuerySchema(Schema):
    cursor = fields.Integer(load_default=1, validate=validate.Range(1, 1000), metadata={
        "description": "The first set number of the page: `next_cursor` of the previous page"})
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 100))


class JobListQuerySchema(Schema):
    state = fields.String(validate=validate.OneOf(STATES), metadata={"description": "Only jobs in this state"})
    limit = fields.Integer(load_default=20, validate=validate.Range(1, 100))
    cursor = fields.String(validate=validate.Regexp(r"^[0-9]{1,12}(\.[0-9]{1,9})?~[0-9a-f]{32}$"), metadata={
        "description": "`next_cursor` of the previous page"})


class ScriptQuerySchema(Schema):
    format = fields.String(load_default="json", validate=validate.OneOf(FORMATS), metadata={
        "description": "`json`, a `fountain` screenplay, the screenplay as `html` or `pdf`, "
                       "or a `csv` shot list"})


class JobSummarySchema(Schema):
    job_id = fields.String()
    state = fields.String()
    title = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    updated_at = fields.String(allow_none=True)
    sets_total = fields.Integer()
    progress = fields.Nested(ProgressSchema)
    status_url = fields.String()


class JobListSchema(Schema):
    """A page of jobs, most recent first."""

    jobs = fields.List(fields.Nested(JobSummarySchema))
    next_cursor = fields.String(allow_none=True, metadata={"description": "null on the last page"})


class ScriptSchema(Schema):
    """The story bible plus every successful segment, in order."""

    job_id = fields.String()
    state = fields.String()
    story_title = fields.String(allow_none=True)
    logline = fields.String(allow_none=True)
    tone = fields.String(allow_none=True)
    characters = fields.List(fields.Dict())
    locations = fields.List(fields.Dict())
    set_synopses = fields.List(fields.Dict())
    segments = fields.List(fields.Dict())
    segments_count = fields.Integer()
    missing_sets = fields.List(fields.Integer(), metadata={
        "description": "Sets whose segments are not available (failed, cancelled or still running)"})
    missing_notes = fields.Dict(keys=fields.String(), values=fields.String(), metadata={
        "description": "Why each missing set is missing and how to retry it, by set number, e.g. "
                       "\"Set 2 failed after 4 attempts; retry with …\""})
