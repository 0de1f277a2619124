"""Query schema of GET /jobs/<job_id>."""

from marshmallow import Schema, fields, validate


class JobQuerySchema(Schema):
    wait = fields.Float(validate=validate.Range(0, 60), metadata={
        "description": "Long-poll: return as soon as the job ends, or after this many seconds"})
