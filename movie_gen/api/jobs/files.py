"""GET /jobs/<id>/files/<name>: a set file or the metadata file of a job, streamed from the output store.

A client never needs a worker's disk nor the bucket's credentials: the web process reads the file
from the output store (OUTPUT_URL or OUTPUT_ROOT), after the same owner check as the job URL.
"""

from __future__ import annotations

import re

from flask import Response
from flask.views import MethodView
from flask_smorest import abort

from movie_gen.storage.files import UnsafePath, join, metadata_file_name, set_file_name

from ..error_docs import documented_errors
from .resources import _job_or_404, _services, blp

MAX_NAME = 200
_NAME = re.compile(r"^[A-Za-z0-9_]+\.json$")
FILE_SCHEMA = {"type": "object", "description": "The file as stored: a set file (`story_title`, "
               "`job_id`, `set_info`, `segments`) or the metadata file (the job's durable record)"}


def job_file_names(job: dict) -> set[str]:
    """The names of the files a job may have: its metadata file and one file per set."""
    stem = job["file_stem"]
    return {metadata_file_name(stem)} | {set_file_name(stem, n) for n in range(1, int(job["sets_total"]) + 1)}


@blp.route("/jobs/<job_id>/files/<name>")
class JobFile(MethodView):
    @blp.response(200, FILE_SCHEMA, content_type="application/json",
                  description="The file's bytes, as the output store holds them")
    @documented_errors(blp, 400, 404)
    def get(self, job_id: str, name: str):
        """A stored file of the job: `<Story_Title>_set_NN.json` or `<Story_Title>_metadata.json`,
        the last part of a `file_path` or of `metadata_file` in the job's result."""
        if len(name) > MAX_NAME or not _NAME.match(name):
            abort(400, errors={"name": ["Must be a file name of the job's result, e.g. "
                                        "Your_Story_Title_set_01.json or Your_Story_Title_metadata.json "
                                        f"(letters, digits and '_', then .json; at most {MAX_NAME} characters)."]})
        job = _job_or_404(job_id)  # checks the owner, restores a job that Redis lost
        if not job.get("file_stem") or not job["request"].get("save_to_files"):
            abort(404, message="This job has no stored files (save_to_files was false, or its story "
                               "bible is not written yet).")
        if name not in job_file_names(job):
            abort(404, message=f"No file {name!r} in this job; its files are named "
                               f"{job['file_stem']}_set_NN.json and {job['file_stem']}_metadata.json.")
        store = _services().storage
        try:
            chunks = store.stream(join(store.directory(job["request"]["output_directory"]), name))
        except UnsafePath:
            chunks = None
        if chunks is None:
            abort(404, message=f"The file {name!r} is not stored (not written yet, or deleted).")
        return Response(chunks, mimetype="application/json", headers={
            "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-cache"})
