"""Thin tasks: unpack ids, call one function of `movie_gen`; Celery retries by the declared policy."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger, worker_ready

from movie_gen.config.logging_setup import configure_logging
from movie_gen.config.settings import get_settings
from movie_gen.execution import generation
from movie_gen.execution.canvas import ASSEMBLE_TASK, BIBLE_TASK, ERROR_TASK, SET_TASK, send_sets
from movie_gen.execution.recovery import start_recovery_thread
from movie_gen.execution.retry_policy import unit_task_options
from movie_gen.jobs.assembly import finish_job
from movie_gen.jobs.retries import run_due_retries
from movie_gen.services import get_services, use_worker_services
from movie_gen.store.job_model import JobState, UnitStatus

from . import app
from .unit_task import UnitTask

log = logging.getLogger(__name__)
_settings = get_settings()
use_worker_services()

# A unit's task: its retry policy (movie_gen.execution.retry_policy: Celery's backoff on the
# transient errors, within the job's own budget). Successes are not stored as results (the job
# store holds each unit's outcome), failures are, so `celery inspect` and Flower show them.
UNIT_TASK = dict(bind=True, base=UnitTask, ignore_result=True, store_errors_even_if_ignored=True,
                 **unit_task_options(_settings))


@after_setup_logger.connect
@after_setup_task_logger.connect
def _setup_logging(logger: logging.Logger, **_: Any) -> None:
    settings = get_services().settings
    configure_logging(settings.log_format, settings.log_level, logger)


@app.task(name=BIBLE_TASK, **UNIT_TASK)
def story_bible(self, job_id: str, slot_at: int | None = None, attempt: int = 1) -> dict[str, Any]:
    """Write the job's story bible (title, roster, locations, one synopsis per set), then send the sets."""
    svc = get_services()

    def write(unit, number: int) -> dict[str, Any]:
        svc.store.advance_state(job_id, JobState.OUTLINING)
        return {"title": generation.write_bible(svc, job_id, number, self.request.id,
                                                unit.lease)["title"]}

    done = self.run_unit(svc, job_id, None, slot_at, attempt, write)
    record = done.get("record") or {}
    if record.get("status") != UnitStatus.SUCCESS:
        return {"job_id": job_id, "status": done.get("status", record.get("status"))}
    run = int(record.get("run", 1))
    if svc.store.is_cancelled(job_id):
        return {"job_id": job_id, "status": UnitStatus.SUCCESS}  # the job ended when it was cancelled
    if svc.store.mark_sets_sent(job_id, run):  # once per run, also when this message is redelivered
        try:
            send_sets(app, job_id, run, svc.store.set_task_ids(job_id))
        except BaseException:
            svc.store.clear_sets_sent(job_id, run)  # a retry of this task sends them
            raise
    return {"job_id": job_id, "status": UnitStatus.SUCCESS}


@app.task(name=SET_TASK, **UNIT_TASK)
def generate_set(self, job_id: str, set_number: int, slot_at: int | None = None,
                 attempt: int = 1) -> dict[str, Any]:
    """Write one set of segments; a set that fails for good raises (FAILURE), the chord goes on."""
    svc = get_services()
    done = self.run_unit(svc, job_id, set_number, slot_at, attempt, lambda unit, number: generation.write_set(
        svc, unit.context, set_number, number, unit.lease))
    return {"set_number": set_number, "status": done.get("status") or done["record"]["status"]}


@worker_ready.connect
def _start_recovery(**_: Any) -> None:
    """Every worker checks for units whose worker died (movie_gen.execution.recovery), and for
    retries that are due."""
    start_recovery_thread(app, get_services(), also=run_due_retries)


@app.task(name=ASSEMBLE_TASK, ignore_result=True)
def assemble(job_id: str, run: int = 1) -> dict[str, Any] | None:
    """Chord callback: every set succeeded; the job's final state, summary and metadata file."""
    result = finish_job(get_services(), job_id, run=run)
    return result["generation_summary"] if result else None


@app.task(name=ERROR_TASK, ignore_result=True)
def pipeline_error(failed_task_id: str, job_id: str, run: int = 1) -> dict[str, Any] | None:
    """Errback: a set failed for good, the bible failed, or a task was lost; end the job anyway.

    With the Redis result backend a chord's errback runs only once every set has finished, so
    the summary is assembled from the same records as the callback's.
    """
    failure = app.AsyncResult(failed_task_id).result
    reason = str(failure) if failure else "a task of the pipeline failed"
    log.info("pipeline ended with a failure: %s", reason, extra={"job_id": job_id})
    result = finish_job(get_services(), job_id, error=reason, run=run)
    return result["generation_summary"] if result else None
