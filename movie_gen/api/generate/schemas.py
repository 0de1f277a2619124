"""Request schema of POST /generate-movie-auto."""

from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate, validates

from movie_gen.storage.files import UnsafePath, check_relative_dir


class GenerateRequestSchema(Schema):
    """A story idea and how long a script to write from it."""

    idea = fields.String(required=True, validate=validate.Length(min=1, max=4000),
                         metadata={"example": "A lighthouse keeper finds a map inside a storm"})
    total_segments = fields.Integer(strict=True, load_default=30, validate=validate.Range(1, 1000))
    segments_per_set = fields.Integer(strict=True, load_default=10, validate=validate.Range(1, 50))
    save_to_files = fields.Boolean(load_default=True)
    output_directory = fields.String(load_default="generated_movie_script", metadata={
        "description": "Relative directory under OUTPUT_ROOT"})
    max_retries = fields.Integer(strict=True, load_default=3, validate=validate.Range(0, 10))
    wait = fields.Float(validate=validate.Range(0, 300), metadata={
        "description": "Seconds to wait for the job to end; 200 with the result if it does"})

    @validates("idea")
    def _idea_is_plain_text(self, value: str, **_: object) -> None:
        if not value.strip():
            raise ValidationError("Must not be blank.")
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            raise ValidationError("Must be valid Unicode text (no lone surrogates).")
        if any(ord(c) < 32 and c not in "\n\t" for c in value):
            raise ValidationError("Must not contain control characters.")

    @validates("output_directory")
    def _relative_dir(self, value: str, **_: object) -> None:
        try:
            check_relative_dir(value)
        except UnsafePath as exc:
            raise ValidationError(str(exc)) from None
