"""One attempt at a unit of work: write the story bible, or write, validate and save one set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import durable_record
from .errors import MovieGenError, PermanentLLMError, StorageError
from .files import UnsafePath, reserve_stem, resolve_under, write_json_atomic
from .llm.feedback import validation_feedback
from .llm.writer import CallContext
from .metadata import metadata_snapshot
from .segments import validate_segments
from .services import Services
from .story_bible import SetPlan, validate_bible


def load_job(svc: Services, job_id: str) -> dict[str, Any]:
    """The job's record, or a permanent error if it is gone."""
    job = svc.store.get(job_id)
    if job is None:
        raise PermanentLLMError(f"job {job_id} has no record in the job store (expired or deleted)")
    return job


def output_dir(svc: Services, job: dict[str, Any]) -> Path:
    """The job's directory under OUTPUT_ROOT, checked again at write time (symlinks may move)."""
    try:
        return resolve_under(svc.settings.output_root, job["request"]["output_directory"])
    except UnsafePath as exc:
        raise StorageError(f"output_directory {exc}") from None


def _call_model(svc: Services, job_id: str, call) -> Any:
    """Make one model call and record its token usage on the job, even when it fails."""
    try:
        reply = call()
    except MovieGenError as exc:
        if exc.usage:
            svc.store.add_usage(job_id, exc.usage)
        raise
    svc.store.add_usage(job_id, reply.usage)
    return reply


def write_bible(svc: Services, job_id: str, attempt: int, task_id: str | None = None) -> dict[str, Any]:
    """Ask the model for the bible, validate it, claim the job's file names, store it."""
    job = load_job(svc, job_id)
    request = job["request"]
    ctx = CallContext(job_id, None, attempt, validation_feedback(job.get("bible_record")))
    reply = _call_model(svc, job_id, lambda: svc.writer.write_bible(
        request["idea"], job["sets_total"], request["total_segments"], ctx))
    bible = validate_bible(reply.data, job["sets_total"])
    stem = None
    if request["save_to_files"]:
        job["bible"], job["title"] = bible, bible["title"]
        try:
            directory = output_dir(svc, job)
            stem = reserve_stem(directory, bible["title"], metadata_snapshot(job), job_id)
            root = Path(svc.settings.output_root).resolve()
            metadata_file = (directory / f"{stem}_metadata.json").relative_to(root).as_posix()
            durable_record.remember(root, job_id, metadata_file)
        except OSError as exc:
            raise StorageError(f"cannot write the metadata file: {exc}") from None
    if not svc.store.save_bible_if_owned(job_id, bible, stem, task_id):
        raise PermanentLLMError("the story bible was retried meanwhile; this attempt is void")
    return bible


def set_file_name(stem: str, set_number: int) -> str:
    return f"{stem}_set_{set_number:02d}.json"


def write_set(svc: Services, job_id: str, set_number: int, attempt: int) -> dict[str, Any]:
    """Ask the model for one set, validate it, save its file; returns the fields of a success."""
    job = load_job(svc, job_id)
    bible = job.get("bible")
    if not bible:
        raise PermanentLLMError("the story bible is missing, so this set cannot be written")
    record = next(s for s in job["sets"] if s["set_number"] == set_number)
    plan = SetPlan(set_number, record["first_segment"], record["last_segment"])
    request = job["request"]
    ctx = CallContext(job_id, set_number, attempt, validation_feedback(record))
    reply = _call_model(svc, job_id, lambda: svc.writer.write_set(request["idea"], bible, plan, ctx))
    segments = validate_segments(reply.data, plan, [c["id"] for c in bible["characters"]])
    svc.store.put_segments(job_id, set_number, segments)
    result: dict[str, Any] = {"segments_count": len(segments)}
    if request["save_to_files"]:
        directory = output_dir(svc, job)
        path = directory / set_file_name(job["file_stem"], set_number)
        document = {"story_title": bible["title"], "job_id": job_id,
                    "set_info": {"set_number": set_number, "sets_total": job["sets_total"],
                                 "first_segment": plan.first, "last_segment": plan.last,
                                 "segments_count": len(segments)},
                    "segments": segments}
        try:
            write_json_atomic(path, document)
        except OSError as exc:
            raise StorageError(f"cannot save set {set_number} to {path.name}: {exc}") from None
        result["file_path"] = path.relative_to(Path(svc.settings.output_root).resolve()).as_posix()
    return result

