"""GET /jobs/<id>/events: the job's changes as server-sent events, fed by the process's event hub."""

from __future__ import annotations

from typing import Iterator

from flask import Response
from flask.views import MethodView

from ..error_docs import documented_errors
from ..event_hub import EventHub
from .resources import _hub, _job_or_404, blp

KEEPALIVE_S = 15  # a comment line this often: proxies keep the stream open, a gone client is noticed
LAST_EVENT_ID = {
    "in": "header", "name": "Last-Event-ID", "required": False, "schema": {"type": "string"},
    "description": "Sent by a reconnecting client (the `id` of the last event it received); "
                   "every connection first gets the job and every set as they are now, so that "
                   "nothing changed in between is missed, then each change",
}
STREAM_DESCRIPTION = (
    "`text/event-stream`. Events: `job` (state, title, progress), `set` (one set: status, attempts, "
    "attempt history, `error` or `last_error`, `next_attempt_at` while retrying) and `end` (the "
    "job ended; the stream closes). Each `data` is one JSON object; each `id` is the job's version. "
    "On connecting, the job and every set are sent as they are, then one event per change.")

EVENT_SCHEMA = {  # one event of the stream (OpenAPI 3.0: the schema of a text/event-stream is per event)
    "type": "object", "required": ["event", "data"],
    "properties": {
        "id": {"type": "string", "description": "The job's version when the event was made"},
        "event": {"type": "string", "enum": ["job", "set", "end"]},
        "data": {"type": "string", "description": "One JSON object: the job (`job`, `end`) or one set "
                                                  "(`set`, as in the job URL's `result.sets`)"},
        "retry": {"type": "integer", "description": "Milliseconds to wait before reconnecting"},
    },
}


@blp.route("/jobs/<job_id>/events")
class JobEvents(MethodView):
    @blp.response(200, EVENT_SCHEMA, content_type="text/event-stream", description=STREAM_DESCRIPTION)
    @documented_errors(blp, 404)
    @blp.doc(parameters=[LAST_EVENT_ID])
    def get(self, job_id: str):
        """Follow the job live: one event per change of a set or of the job, a final `end`."""
        _job_or_404(job_id)  # checks the owner, restores a job that Redis lost
        stream = _stream(_hub(), job_id)
        return Response(stream, mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def _stream(hub: EventHub, job_id: str) -> Iterator[str]:
    yield "retry: 2000\n\n"
    with hub.follow(job_id) as feed:
        seq, events = feed.snapshot()
        while True:
            ending = next((i for i, e in enumerate(events) if e.kind == "end"), None)
            if ending is not None:
                yield "".join(e.text for e in events[:ending + 1])
                return
            yield "".join(e.text for e in events) if events else ": keep-alive\n\n"
            if hub.closing:  # the process is stopping: the client reconnects to another one
                return
            news = feed.wait_after(seq, KEEPALIVE_S)
            if hub.closing:
                return
            if news is None:  # this stream fell too far behind: the state as it is now
                seq, events = feed.snapshot()
            else:
                seq, events = (news[-1].seq if news else seq), news
