"""Thin tasks: unpack ids, call one function of `movie_gen`, leave retrying to the unit runner."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger

from movie_gen import generation
from movie_gen.assembly import finish_job
from movie_gen.job_store import OUTLINING, SET_FAILED
from movie_gen.logging_setup import configure_logging
from movie_gen.pipeline import ASSEMBLE_TASK, BIBLE_TASK, ERROR_TASK, SET_TASK
from movie_gen.services import get_services

from . import app
from .unit_runner import run_unit

log = logging.getLogger(__name__)


class StoryBibleFailed(Exception):
    """The bible failed for good: raised to stop the chain; the errback ends the job."""


@after_setup_logger.connect
@after_setup_task_logger.connect
def _setup_logging(logger: logging.Logger, **_: Any) -> None:
    settings = get_services().settings
    configure_logging(settings.log_format, settings.log_level, logger)


@app.task(bind=True, name=BIBLE_TASK, max_retries=None)
def story_bible(self, job_id: str, throttles: int = 0) -> dict[str, Any]:
    """Write the job's story bible (title, roster, locations, one synopsis per set)."""
    svc = get_services()
    record = run_unit(self, svc, job_id, None, throttles,
                      lambda attempt: {"title": generation.write_bible(svc, job_id, attempt,
                                                                       self.request.id)["title"]},
                      on_start=lambda: svc.store.advance_state(job_id, OUTLINING))
    if record["status"] == SET_FAILED:
        raise StoryBibleFailed(record.get("error_message", "the story bible failed"))
    return {"job_id": job_id, "title": record.get("title")}


@app.task(bind=True, name=SET_TASK, max_retries=None)
def generate_set(self, job_id: str, set_number: int, throttles: int = 0) -> dict[str, Any]:
    """Write one set of segments; returns its record, `failed` included (never raises)."""
    svc = get_services()
    record = run_unit(self, svc, job_id, set_number, throttles,
                      lambda attempt: generation.write_set(svc, job_id, set_number, attempt))
    return {"set_number": set_number, "status": record["status"]}


@app.task(name=ASSEMBLE_TASK)
def assemble(job_id: str, run: int = 1) -> dict[str, Any] | None:
    """Chord callback: the job's final state, summary and metadata file."""
    svc = get_services()
    result = finish_job(svc, job_id, run=run)
    if result is not None:
        svc.store.release_lock(job_id, "retry")
    return result["generation_summary"] if result else None


@app.task(name=ERROR_TASK)
def pipeline_error(failed_task_id: str, job_id: str, run: int = 1) -> dict[str, Any] | None:
    """Errback: the pipeline broke (bible failed, worker lost, time limit); end the job anyway."""
    svc = get_services()
    failure = app.AsyncResult(failed_task_id).result
    reason = str(failure) if failure else "a task of the pipeline failed"
    log.error("pipeline error: %s", reason, extra={"job_id": job_id})
    result = finish_job(svc, job_id, error=reason, run=run)
    if result is not None:
        svc.store.release_lock(job_id, "retry")
    return result["generation_summary"] if result else None
