"""The Celery canvas of a job: chain(story bible, chord(one task per set, assemble))."""

from __future__ import annotations

import uuid

from celery import Celery, chain, chord, group

BIBLE_TASK = "movie_gen.story_bible"
SET_TASK = "movie_gen.generate_set"
ASSEMBLE_TASK = "movie_gen.assemble"
ERROR_TASK = "movie_gen.pipeline_error"


def new_task_id() -> str:
    """Task ids are chosen before enqueueing, so the job store knows them (e.g. to revoke)."""
    return str(uuid.uuid4())


def sets_chord(app: Celery, job_id: str, run: int, set_task_ids: dict[int, str]) -> chord:
    """One task per set in parallel, then the assemble callback (with an errback that ends the job).

    `run` numbers the job's pipelines (1, then one more per retry): a callback of an older run
    never ends a newer one.
    """
    body = app.signature(ASSEMBLE_TASK, args=(job_id, run), immutable=True)
    body.link_error(app.signature(ERROR_TASK, args=(job_id, run)))
    header = group(app.signature(SET_TASK, args=(job_id, n), immutable=True, task_id=task_id)
                   for n, task_id in sorted(set_task_ids.items()))
    return chord(header, body)


def enqueue_job(app: Celery, job_id: str, run: int, set_task_ids: dict[int, str],
                bible_task_id: str | None = None) -> None:
    """Send the job's canvas to the broker; without a bible task id the stored bible is reused."""
    work = sets_chord(app, job_id, run, set_task_ids)
    if bible_task_id:
        bible = app.signature(BIBLE_TASK, args=(job_id,), immutable=True, task_id=bible_task_id)
        bible.link_error(app.signature(ERROR_TASK, args=(job_id, run)))
        work = chain(bible, work)
    work.apply_async()
