"""A job and its units as the answers show them: one read of the store, and what is derived from it.

The schemas of `movie_gen.jobs.result_schema` and the API serialize these views; a view computes
each derived value once (the sets' statuses, counts and sizes) and says which fields are absent
(`missing`). A record's own fields are read as attributes.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from marshmallow import missing

from movie_gen.config.settings import Settings
from movie_gen.jobs.retries import stalled_seconds
from movie_gen.storage.metadata import token_usage
from movie_gen.store.job_model import (
    COMPLETED,
    FINAL_STATES,
    SET_CANCELLED,
    SET_FAILED,
    SET_PENDING,
    SET_SUCCESS,
)
from movie_gen.story.story_bible import set_sizes

RETRY_ENDPOINT = "/retry-failed-story-sets"
STALLED = ("no progress for longer than any redelivery takes: its tasks were lost; "
           "POST /retry-failed-story-sets runs what is left")


def _given(value: Any) -> Any:
    """The value, or `missing` (the field is left out) when it is empty."""
    return value if value else missing


def set_statuses(job: dict[str, Any]) -> dict[int, str]:
    """Every set's status, from a whole job or from a page read (`JobStore.get_page`)."""
    if "set_statuses" in job:
        return job["set_statuses"]
    return {s["set_number"]: s["status"] for s in job["sets"]}


def progress_of(statuses: list[str]) -> dict[str, int]:
    """Counts of sets by outcome, as the job URL's `progress` gives them."""
    done = {s: statuses.count(s) for s in (SET_SUCCESS, SET_FAILED, SET_CANCELLED)}
    return {"sets_total": len(statuses), "sets_succeeded": done[SET_SUCCESS],
            "sets_failed": done[SET_FAILED], "sets_cancelled": done[SET_CANCELLED],
            "sets_pending": len(statuses) - sum(done.values())}


class _RecordView:
    """A record whose own fields read as attributes; an absent one is `missing`."""

    def __init__(self, record: dict[str, Any], history: bool) -> None:
        self.record = record
        self.history = history

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self.record.get(name, missing)

    @property
    def attempts(self) -> int:
        return len(self.record.get("attempts", []))

    @property
    def attempt_history(self) -> Any:
        return self.record.get("attempts", []) if self.history else missing


class UnitView(_RecordView):
    """One set (or the story bible): its counts, and what its outcome shows."""

    @property
    def status(self) -> str:
        return self.record.get("status", SET_PENDING)

    @property
    def segments_requested(self) -> int:
        return self.record["last_segment"] - self.record["first_segment"] + 1

    def _if(self, status: str, value: Any) -> Any:
        return value if self.status == status else missing

    @property
    def segments_count(self) -> Any:
        return self._if(SET_SUCCESS, self.record.get("segments_count", 0))

    @property
    def token_usage(self) -> Any:
        usage = self.record.get("token_usage")
        return self._if(SET_SUCCESS, missing if usage is None else usage)

    @property
    def file_path(self) -> Any:
        return self._if(SET_SUCCESS, _given(self.record.get("file_path")))

    @property
    def error(self) -> Any:
        record = self.record
        return self._if(SET_FAILED, record.get("error_message") or record.get("last_error", "failed"))


class JobView(_RecordView):
    """The job of one read: `links` and `settings` for the job URL, `limit` for a page of sets."""

    def __init__(self, job: dict[str, Any], history: bool = True, links: dict[str, Any] | None = None,
                 settings: Settings | None = None, limit: int | None = None) -> None:
        super().__init__(job, history)
        self.links = links if links is not None else missing
        self.settings = settings
        self.limit = limit

    @cached_property
    def statuses(self) -> dict[int, str]:
        return set_statuses(self.record)

    @cached_property
    def counts(self) -> dict[int, int]:
        if "set_attempts" in self.record:
            return self.record["set_attempts"]
        return {s["set_number"]: len(s.get("attempts", [])) for s in self.record["sets"]}

    @cached_property
    def plans(self) -> dict[int, int]:
        request = self.record["request"]
        return set_sizes(request["total_segments"], request["segments_per_set"])

    def _numbers(self, status: str) -> list[int]:
        return sorted(n for n, s in self.statuses.items() if s == status)

    # The job URL
    @property
    def status_url(self) -> Any:
        return missing if self.links is missing else self.links["self"]

    @cached_property
    def progress(self) -> dict[str, int]:
        return progress_of(list(self.statuses.values()))

    @property
    def stalled(self) -> Any:
        idle = stalled_seconds(self.record, self.settings) if self.settings else None
        return missing if idle is None else {"idle_s": round(idle), "message": STALLED}

    # The result
    @property
    def success(self) -> bool:
        return self.record.get("state") == COMPLETED

    @property
    def logline(self) -> Any:
        return self.record["bible"]["logline"] if self.record.get("bible") else missing

    @property
    def sets(self) -> list[UnitView]:
        return [UnitView(s, self.history) for s in self.record["sets"]]

    @property
    def story_bible(self) -> _RecordView:
        return UnitView(self.record.get("bible_record") or {}, self.history)

    @property
    def segments_generated(self) -> int:
        return sum(self.plans.get(n, 0) for n in self._numbers(SET_SUCCESS))

    @property
    def failed_numbers(self) -> list[int]:
        return self._numbers(SET_FAILED)

    @property
    def cancelled_numbers(self) -> Any:
        return _given(self._numbers(SET_CANCELLED))

    @property
    def can_retry(self) -> bool:
        ended = self.record.get("state") in FINAL_STATES
        return bool(self._numbers(SET_FAILED) or self._numbers(SET_CANCELLED)) and ended

    @property
    def retry_results(self) -> Any:
        """What happened to each set of the last retry."""
        retried = (self.record.get("retry") or {}).get("retried_sets", [])
        statuses = self.statuses
        return missing if not self.record.get("retry") else [
            {"set_number": n, "status": statuses[n],
             "segments_generated": self.plans.get(n, 0) if statuses[n] == SET_SUCCESS else 0}
            for n in retried if n in statuses]

    @property
    def not_before(self) -> Any:
        return _given(self.record.get("quota_not_before"))

    @property
    def scheduled_at(self) -> Any:
        return _given(self.record.get("retry_scheduled_at"))

    @property
    def token_usage(self) -> dict[str, int]:
        return token_usage(self.record)

    @property
    def attempts_per_set(self) -> dict[str, int]:
        return {str(n): self.counts.get(n, 0) for n in sorted(self.statuses)}

    @property
    def total_retries(self) -> int:
        return sum(max(0, c - 1) for c in self.counts.values())

    @property
    def metadata_file(self) -> Any:
        stem = self.record.get("file_stem")
        return f"{self.record['request']['output_directory']}/{stem}_metadata.json" if stem else missing

    @property
    def error(self) -> Any:
        if self.record.get("quota_not_before"):
            return self.record.get("quota_error")
        return _given(self.record.get("error"))

    @property
    def warnings(self) -> Any:
        return _given(self.record.get("warnings"))

    @property
    def last_set(self) -> int:
        return self.record["sets"][-1]["set_number"] if self.record["sets"] else 0

    @property
    def sets_next(self) -> Any:
        if self.links is missing:
            return missing
        last = self.last_set
        return f"/jobs/{self.record['job_id']}/sets?cursor={last + 1}" if last < len(self.statuses) else None

    @property
    def next_cursor(self) -> str | None:
        """The cursor of the page after this one (GET /jobs/<id>/sets), None on the last."""
        last = self.last_set
        more = last < self.record["sets_total"] and len(self.record["sets"]) == self.limit
        return str(last + 1) if more else None
