"""What one web process knows of a job its event streams follow: the job, each set, recent events.

A feed is read from the job store once per burst of changes, whatever the number of streams:
the status line says which sets changed (three bytes a set), and only their records are read.
Each event carries the job's version as its id; a stream that connects (or reconnects with
`Last-Event-ID`) first gets the current state of the job and of every set, then each change.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from movie_gen.jobs.job_view import progress_of, unit_view
from movie_gen.jobs.result_schema import SetEntrySchema
from movie_gen.store.job_model import FINAL_STATES, now_iso, parse_timestamp
from movie_gen.store.job_store import JobStore
from movie_gen.store.units import read_status_line

_SET_ENTRY = SetEntrySchema()
MAX_EVENTS = 500  # kept per job; a stream further behind gets a fresh snapshot instead


@dataclass(frozen=True)
class Event:
    seq: int  # order within this process
    id: str  # the job's version when it was read: the SSE `id`
    kind: str  # `job`, `set` or `end`
    data: dict[str, Any]

    @cached_property
    def text(self) -> str:
        """The event as the stream sends it (encoded once, whatever the number of streams)."""
        return f"id: {self.id}\nevent: {self.kind}\ndata: {json.dumps(self.data)}\n\n"


def set_event_data(record: dict[str, Any]) -> dict[str, Any]:
    """A set as its event carries it: the job URL's set entry, the last error, the next attempt."""
    data = _SET_ENTRY.dump(unit_view(record))
    if record.get("last_error"):
        data["last_error"] = record["last_error"]
    last = (record.get("attempts") or [{}])[-1]
    if record["status"] == "retrying" and last.get("finished_at") and last.get("delay_s") is not None:
        data["next_attempt_at"] = now_iso(parse_timestamp(last["finished_at"]) + float(last["delay_s"]))
    return data


class JobFeed:
    """The job as this process last read it, and the events made from each change."""

    def __init__(self, job_id: str) -> None:
        self.job_id = job_id
        self.loading = threading.Lock()  # one read at a time
        self.changed = threading.Condition()
        self.followers = 0
        self.loaded = False
        self.owner: str | None = None
        self.version = "0"
        self.job: dict[str, Any] | None = None  # the `job` event's data; None once the job is gone
        self.sets: dict[int, dict[str, Any]] = {}
        self.events: list[Event] = []
        self.seq = 0

    def refresh(self, store: JobStore) -> None:
        """Read what changed since the last read and turn it into events (call under `loading`)."""
        keys = store.keys(self.job_id)
        pipe = store.redis.pipeline(transaction=False)
        pipe.hmget(keys[0], ["sets_total", "state"])
        pipe.get(keys[4])
        (total, state), line = pipe.execute()
        if state is None or line is None:
            self._gone()
            return
        statuses, counts = read_status_line(line, int(total or 0))
        changed = [n for n in statuses if (statuses[n], counts[n]) != self._known(n)]
        first = min(changed) if changed else 1
        job = store.get_page(self.job_id, first, max(changed) - first + 1 if changed else 0)
        if job is None:
            self._gone()
            return
        fresh = [set_event_data(r) for r in job["sets"] if r["set_number"] in changed]
        summary = _summary(job)
        with self.changed:
            self.owner = job.get("owner") or None
            self.version = str(job.get("version") or 0)
            for data in fresh:
                self.sets[data["set_number"]] = data
                self._add("set", data)
            if summary != self.job:
                was_final = self.job is not None and self.job["state"] in FINAL_STATES
                self.job = summary
                self._add("job", summary)
                if summary["state"] in FINAL_STATES and not was_final:
                    self._add("end", summary)
            self.loaded = True
            self.changed.notify_all()

    def snapshot(self) -> tuple[int, list[Event]]:
        """The position of the latest event, and the job and every set as they are now."""
        with self.changed:
            events = [Event(self.seq, self.version, "set", data) for _, data in sorted(self.sets.items())]
            if self.job is None:
                return self.seq, [Event(self.seq, self.version, "end", {"job_id": self.job_id, "state": None})]
            events.insert(0, Event(self.seq, self.version, "job", self.job))
            if self.job["state"] in FINAL_STATES:
                events.append(Event(self.seq, self.version, "end", self.job))
            return self.seq, events

    def wait_after(self, seq: int, timeout: float) -> list[Event] | None:
        """Events after position `seq` ([] if none came within `timeout`); None: `seq` is too old."""
        with self.changed:
            if not self._after(seq):
                self.changed.wait(timeout)
            if self.events and self.events[0].seq > seq + 1:
                return None
            return self._after(seq)

    def _after(self, seq: int) -> list[Event]:
        return [e for e in self.events if e.seq > seq] if self.events and self.events[-1].seq > seq else []

    def _known(self, set_number: int) -> tuple[str, int] | None:
        data = self.sets.get(set_number)
        return (data["status"], data["attempts"]) if data else None

    def _add(self, kind: str, data: dict[str, Any]) -> None:
        self.seq += 1
        self.events.append(Event(self.seq, self.version, kind, data))
        del self.events[:-MAX_EVENTS]

    def _gone(self) -> None:
        with self.changed:
            if self.job is not None or not self.loaded:
                self.job = None
                self.loaded = True
                self._add("end", {"job_id": self.job_id, "state": None})
            self.changed.notify_all()


def _summary(job: dict[str, Any]) -> dict[str, Any]:
    bible = job.get("bible_record") or {}
    return {"job_id": job["job_id"], "state": job["state"], "title": job.get("title"),
            "idea": job["request"].get("idea"), "error": job.get("error"),
            "created_at": job.get("created_at"), "progress": progress_of(list(job["set_statuses"].values())),
            "story_bible": {"status": bible.get("status", "pending"), "attempt_history": bible.get("attempts", [])}}
