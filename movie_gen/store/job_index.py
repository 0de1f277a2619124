"""The job index: sorted sets of job ids by creation time (`movie_gen:jobs`, and one per owner),
read a page at a time after a cursor."""

from __future__ import annotations

from typing import Any

from movie_gen.store.job_keys import JobKeys

INDEX = "movie_gen:jobs"


def index_key(owner: str | None) -> str:
    return f"{INDEX}:owner:{owner}" if owner else INDEX


class JobIndex(JobKeys):
    """Every job, most recent first; an entry whose job has expired is dropped when read."""

    def _add_to_index(self, job_id: str, owner: str | None, score: float) -> None:
        pipe = self.redis.pipeline()
        pipe.zadd(INDEX, {job_id: score})
        if owner:
            pipe.zadd(index_key(owner), {job_id: score})
        pipe.execute()

    def list_jobs(self, owner: str | None, state: str | None, limit: int,
                  cursor: tuple[float, str] | None) -> tuple[list[dict[str, Any]], tuple[float, str] | None]:
        """Jobs, most recent first, optionally of one state, after `cursor` (score, job id).

        The cursor is a position in the index, not an offset: jobs created between two pages
        neither repeat nor push others out of sight.
        """
        index, found = index_key(owner), []
        names = ("job_id", "state", "created_at", "updated_at", "title", "sets_total")
        top = "+inf" if cursor is None else repr(cursor[0])
        while len(found) < limit:
            rows = self.redis.zrevrangebyscore(index, top, "-inf", start=0, num=4 * limit + 1,
                                               withscores=True)
            if cursor is not None:  # equal scores come in reverse id order: skip up to the cursor
                rows = [(m, s) for m, s in rows if s < cursor[0] or m < cursor[1]]
            if not rows:
                return found, None
            pipe = self.redis.pipeline(transaction=False)
            for job_id, _ in rows:
                pipe.hmget(self.key(job_id), names)
            for (job_id, score), values in zip(rows, pipe.execute()):
                cursor = (score, job_id)
                if values[0] is None:
                    self.redis.zrem(index, job_id)  # its record expired
                    continue
                row = dict(zip(names, values))
                if state is None or row["state"] == state:
                    row["sets_total"] = int(row["sets_total"] or 0)
                    found.append(row)
                    if len(found) == limit:
                        break
            top = repr(cursor[0])
        rest = self.redis.zrevrangebyscore(index, top, "-inf", start=0, num=limit + 1, withscores=True)
        more = any(s < cursor[0] or m < cursor[1] for m, s in rest)
        return found, cursor if more else None
