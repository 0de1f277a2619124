"""The end of a job's run: its final state, the metadata file, and the `result` it returns."""

from __future__ import annotations

import logging
from typing import Any

from movie_gen.errors import StorageError, StorageUnavailable
from movie_gen.execution.generation import output_dir
from movie_gen.jobs.job_view import set_statuses
from movie_gen.jobs.result_schema import result_of
from movie_gen.services import Services
from movie_gen.storage.files import join, metadata_file_name
from movie_gen.storage.metadata import metadata_snapshot
from movie_gen.store.job_model import UNFINISHED, JobState, UnitStatus, now_iso

log = logging.getLogger(__name__)
def final_state(job: dict[str, Any]) -> str:
    """cancelled if asked; completed when every set succeeded, failed when none did, else partial."""
    if job.get("cancelled_at"):
        return JobState.CANCELLED
    statuses = set_statuses(job)
    succeeded = sum(1 for status in statuses.values() if status == UnitStatus.SUCCESS)
    if succeeded == len(statuses) and job.get("bible"):
        return JobState.COMPLETED
    return JobState.PARTIAL if succeeded else JobState.FAILED


def write_metadata(svc: Services, job: dict[str, Any]) -> None:
    """Rewrite the job's metadata file from the job store (a whole-file replace)."""
    if not job.get("file_stem") or not job["request"].get("save_to_files"):
        return
    try:
        svc.storage.write_json(join(output_dir(svc, job), metadata_file_name(job["file_stem"])),
                               metadata_snapshot(job))
    except (OSError, StorageError, StorageUnavailable) as exc:
        log.error("cannot write the metadata file: %s", exc, extra={"job_id": job["job_id"]})
        warning = (f"the metadata file {metadata_file_name(job['file_stem'])} could not be written ({exc}): "
                   "it does not show this job's last state")
        svc.store.add_warning(job["job_id"], warning)
        job["warnings"] = [*job.get("warnings", []), warning]


def finish_job(svc: Services, job_id: str, error: str | None = None,
               run: int | None = None) -> dict[str, Any] | None:
    """Decide the job's final state, store it and write the metadata file; returns the result.

    Only one caller ends a run (the callback, the errback or a cancel), and only once.

    With `error` (a unit failed, or the pipeline broke: a worker died, a time limit hit), units
    that never reached an outcome are marked failed with that error, so that the job ends and
    can be retried; the job itself carries the error only then, since a set that failed for good
    already says why in its own record.
    """
    job = svc.store.get(job_id)
    if job is None:
        log.error("job record is gone; nothing to assemble", extra={"job_id": job_id})
        return None
    run = int(job.get("run") or 1) if run is None else run
    if run != int(job.get("run") or 1):
        log.info("callback of run %s ignored: run %s is current", run, job.get("run"),
                 extra={"job_id": job_id})
        return None
    if job.get("cancelled_at"):
        if svc.store.running_units(job_id):
            return None  # the last running unit ends the cancelled job (finish_if_cancelled)
        error = None  # revoked tasks break the chord: that is the cancellation, not an error
    if not svc.store.claim_finish(job_id, run):
        log.info("run %s has ended already", run, extra={"job_id": job_id})
        return None  # a job seen final never changes; only one caller ends a run
    if error and _fail_unfinished(svc, job, error):
        job = svc.store.get(job_id) or job
    elif error and job.get("bible"):
        error = None
    state = final_state(job)
    fields: dict[str, Any] = {"finished_at": now_iso()}
    if error:
        fields["error"] = error
    job.update(state=state, **fields)
    write_metadata(svc, job)  # before the state is announced: a client that sees it finds the file
    if not svc.store.finalize(job_id, run, state, **fields):
        log.info("run %s was replaced before it could end the job", run, extra={"job_id": job_id})
        return None
    log.info("job %s: %s", state, job.get("title"), extra={"job_id": job_id})
    return result_of(job)


def _fail_unfinished(svc: Services, job: dict[str, Any], error: str) -> bool:
    """Mark every unit without an outcome failed with `error`; whether there was any.

    Each unit is changed by compare-and-set on the record just read, so an attempt that wrote
    meanwhile is read again rather than overwritten (a few times at most).
    """
    marked = False
    units = [(s["set_number"], f"Set {s['set_number']} did not finish: {error}")
             for s in job["sets"] if s["status"] in UNFINISHED]
    if (job.get("bible_record") or {}).get("status", UnitStatus.PENDING) in UNFINISHED:
        units.append((None, f"The story bible did not finish: {error}"))
    for number, message in units:
        for _ in range(5):
            record = svc.store.get_record(job["job_id"], number)
            if record is None or record.get("status") not in UNFINISHED:
                break
            if svc.store.update_unit_if(job["job_id"], number, UNFINISHED, UnitStatus.FAILED,
                                        record={**record, "error_message": message}, expected=record):
                marked = True
                break
    return marked
