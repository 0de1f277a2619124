"""One attempt at a unit of work: write the story bible, or write, validate and save one set."""

from __future__ import annotations

from typing import Any

from movie_gen.errors import LeaseLost, MovieGenError, PermanentLLMError, StorageError
from movie_gen.execution.leases import UnitLease
from movie_gen.llm.feedback import validation_feedback
from movie_gen.llm.writer import CallContext
from movie_gen.services import Services
from movie_gen.storage import durable_record
from movie_gen.storage.files import UnsafePath, join, metadata_file_name, reserve_stem, set_file_name
from movie_gen.storage.metadata import metadata_snapshot
from movie_gen.storage.object_store import OutputStore
from movie_gen.story.segments import validate_segments
from movie_gen.story.story_bible import SetPlan, validate_bible


def load_job(svc: Services, job_id: str) -> dict[str, Any]:
    """The job's record, or a permanent error if it is gone."""
    job = svc.store.get(job_id)
    if job is None:
        raise PermanentLLMError(f"job {job_id} has no record in the job store (expired or deleted)")
    return job


def output_dir(svc: Services, job: dict[str, Any]) -> str:
    """The job's directory in the output store, checked again at write time (symlinks may move)."""
    try:
        return svc.storage.directory(job["request"]["output_directory"])
    except UnsafePath as exc:
        raise StorageError(f"output_directory {exc}") from None


def _call_model(svc: Services, job_id: str, call) -> Any:
    """Make one model call and record its token usage (and output mode) on the job, even when it
    fails; a failed call's usage is also kept on the error, for its attempt record."""
    try:
        reply = call()
    except MovieGenError as exc:
        if exc.usage:
            svc.store.add_usage(job_id, exc.usage)
        raise
    svc.store.add_usage(job_id, reply.usage, getattr(reply, "output_mode", None))
    return reply


def _validated(reply: Any, check) -> Any:
    """`check(reply.data)`; a reply that fails it keeps its token usage for the attempt record."""
    try:
        return check(reply.data)
    except MovieGenError as exc:
        exc.usage = reply.usage
        raise


def write_bible(svc: Services, job_id: str, attempt: int, task_id: str | None = None,
                lease: UnitLease | None = None) -> dict[str, Any]:
    """Ask the model for the bible, validate it, claim the job's file names, store it."""
    job = load_job(svc, job_id)
    request = job["request"]
    ctx = CallContext(job_id, None, attempt, validation_feedback(job.get("bible_record")),
                      pace=svc.limiter.pace)
    reply = _call_model(svc, job_id, lambda: svc.writer.write_bible(
        request["idea"], job["sets_total"], request["total_segments"], ctx))
    bible = _validated(reply, lambda data: validate_bible(data, job["sets_total"]))
    job["tokens_prompt"] += int(reply.usage.get("prompt_tokens", 0))  # for the metadata file
    job["tokens_completion"] += int(reply.usage.get("completion_tokens", 0))
    job["llm_calls"] += int(reply.usage.get("model_calls", 1))
    stem = None
    if request["save_to_files"]:
        job["bible"], job["title"] = bible, bible["title"]
        try:
            directory = output_dir(svc, job)
            stem = reserve_stem(svc.storage, directory, bible["title"], metadata_snapshot(job), job_id)
            durable_record.remember(svc.storage, job_id, join(directory, metadata_file_name(stem)))
        except OSError as exc:
            raise StorageError(f"cannot write the metadata file: {exc}") from None
    saved = svc.store.save_bible_if_owned(job_id, bible, stem, task_id,
                                          (lease.key, lease.token) if lease else None)
    if saved == -1:
        raise LeaseLost("another delivery took over the story bible")
    if saved != 1:
        raise PermanentLLMError("the story bible was retried meanwhile; this attempt is void")
    return bible


def write_set(svc: Services, job: dict[str, Any], set_number: int, attempt: int,
              lease: UnitLease | None = None) -> dict[str, Any]:
    """Ask the model for one set, validate it, save its file; returns the fields of a success.

    `job` is the set's context from `JobStore.unit_context`: the job's fields, the set's record
    and the bible with only the synopses this set needs. The segments are returned under
    `segments`, for the store to write together with the set's record. A set file that an
    earlier delivery of this job saved (its record was then lost, e.g. Redis was unreachable) is
    used as it is: a reply already paid for is not asked for again.
    """
    job_id = job["job_id"]
    bible = job.get("bible")
    if not bible:
        raise PermanentLLMError("the story bible is missing, so this set cannot be written")
    record = job["record"]
    plan = SetPlan(set_number, record["first_segment"], record["last_segment"])
    request = job["request"]
    roster = [c["id"] for c in bible["characters"]]
    key = join(output_dir(svc, job), set_file_name(job["file_stem"], set_number)) if request["save_to_files"] else None
    saved = _saved_segments(svc.storage, key, job_id, plan, roster, _places(bible)) if key else None
    usage: dict[str, int] = {}
    if saved is None:
        reply = _call_model(svc, job_id, lambda: svc.writer.write_set(
            request["idea"], bible, plan, CallContext(
            job_id, set_number, attempt, feedback=validation_feedback(record), run=int(record.get("run", 1)),
            pace=svc.limiter.pace)))
        segments = _validated(reply, lambda data: validate_segments(data, plan, roster, _places(bible)))
        usage = reply.usage
    else:
        segments = saved
    result: dict[str, Any] = {"segments_count": len(segments), "segments": segments,
                              "token_usage": usage}
    if key is None:
        return result
    if lease is not None and not lease.held():
        raise LeaseLost(f"another delivery took over set {set_number}; its file is left alone")
    if saved is None:
        document = {"story_title": bible["title"], "job_id": job_id,
                    "set_info": {"set_number": set_number, "sets_total": job["sets_total"],
                                 "first_segment": plan.first, "last_segment": plan.last,
                                 "segments_count": len(segments), "token_usage": usage},
                    "segments": segments}
        try:
            svc.storage.write_json(key, document)
        except OSError as exc:
            raise StorageError(f"cannot save set {set_number} to {key.rsplit('/', 1)[-1]}: {exc}") from None
    result["file_path"] = key
    return result


def _places(bible: dict[str, Any]) -> list[str]:
    return [loc["name"] for loc in bible.get("locations", [])]


def _saved_segments(store: OutputStore, key: str, job_id: str, plan: SetPlan, roster: list[str],
                    places: list[str] | None = None) -> list[dict[str, Any]] | None:
    """The segments of this job's set file, if one is there and still valid (storage that does
    not answer raises StorageUnavailable: the attempt is retried before any model call)."""
    document = store.read_json(key)
    if not isinstance(document, dict) or document.get("job_id") != job_id:
        return None
    try:
        return validate_segments({"segments": document["segments"]}, plan, roster, places)
    except (KeyError, TypeError, ValueError, MovieGenError):
        return None
