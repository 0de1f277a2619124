"""The Celery canvas of a job: the story bible, then chord(one task per set, assemble)."""

from __future__ import annotations

import uuid

from celery import Celery, Signature, chord, group

BIBLE_TASK = "movie_gen.story_bible"
SET_TASK = "movie_gen.generate_set"
ASSEMBLE_TASK = "movie_gen.assemble"
ERROR_TASK = "movie_gen.pipeline_error"


def new_task_id() -> str:
    """Task ids are chosen before enqueueing, so the job store knows them (e.g. to revoke)."""
    return str(uuid.uuid4())


def _signature(app: Celery, name: str, args: tuple, task_id: str | None = None) -> Signature:
    """A task of the canvas, sent with `ignore_result`: nothing waits on its result, so the sending
    process does not subscribe to its result channel (the Redis backend would, per task sent)."""
    options = {"task_id": task_id} if task_id else {}
    return app.signature(name, args=args, immutable=True, ignore_result=True, **options)


def sets_chord(app: Celery, job_id: str, run: int, set_task_ids: dict[int, str]) -> chord:
    """One task per set in parallel, then the assemble callback (with an errback that ends the job).

    `run` numbers the job's pipelines (1, then one more per retry): a callback of an older run
    never ends a newer one. A set that fails for good fails its task; with the Redis result
    backend the chord then calls the errback once every set has finished.
    """
    body = _signature(app, ASSEMBLE_TASK, (job_id, run))
    body.link_error(app.signature(ERROR_TASK, args=(job_id, run), ignore_result=True))
    header = group(_signature(app, SET_TASK, (job_id, n), task_id)
                   for n, task_id in sorted(set_task_ids.items()))
    return chord(header, body)


def send_sets(app: Celery, job_id: str, run: int, set_task_ids: dict[int, str]) -> None:
    """Send the chord of sets, then drop the result subscriptions that sending it took.

    Celery's group subscribes the sending process to each header task's result channel
    (`group._apply_tasks` calls `res.then`), whatever `ignore_result` says; nothing here waits on
    those results, so each is removed at once instead of accumulating for the process's life.
    """
    result = sets_chord(app, job_id, run, set_task_ids).apply_async()
    header = getattr(result, "parent", None)
    for set_result in getattr(header, "results", None) or []:
        app.backend.remove_pending_result(set_result)


def enqueue_job(app: Celery, job_id: str, run: int, set_task_ids: dict[int, str],
                bible_task_id: str | None = None) -> None:
    """Send the job's first task: the bible (which sends the sets when it succeeds), or the sets.

    Without a bible task id the stored bible is reused (a retry of failed sets).
    """
    if not bible_task_id:
        send_sets(app, job_id, run, set_task_ids)
        return
    bible = _signature(app, BIBLE_TASK, (job_id,), bible_task_id)
    bible.link_error(app.signature(ERROR_TASK, args=(job_id, run), ignore_result=True))
    bible.apply_async()
