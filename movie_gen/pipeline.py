"""The Celery canvas of a job: chain(story bible, chord(one task per set, assemble))."""

from __future__ import annotations

from celery import Celery, chain, chord, group
from celery.result import AsyncResult

BIBLE_TASK = "movie_gen.story_bible"
SET_TASK = "movie_gen.generate_set"
ASSEMBLE_TASK = "movie_gen.assemble"
ERROR_TASK = "movie_gen.pipeline_error"


def sets_chord(app: Celery, job_id: str, set_numbers: list[int]) -> chord:
    """One task per set in parallel, then the assemble callback (with an errback that ends the job)."""
    body = app.signature(ASSEMBLE_TASK, args=(job_id,), immutable=True)
    body.link_error(app.signature(ERROR_TASK, args=(job_id,)))
    header = group(app.signature(SET_TASK, args=(job_id, n), immutable=True) for n in set_numbers)
    return chord(header, body)


def enqueue_job(app: Celery, job_id: str, set_numbers: list[int], with_bible: bool = True) -> AsyncResult:
    """Send the job's canvas to the broker; with_bible=False reuses the stored bible (retries)."""
    work = sets_chord(app, job_id, set_numbers)
    if with_bible:
        bible = app.signature(BIBLE_TASK, args=(job_id,), immutable=True)
        bible.link_error(app.signature(ERROR_TASK, args=(job_id,)))
        work = chain(bible, work)
    return work.apply_async()
