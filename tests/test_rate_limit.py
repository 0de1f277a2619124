"""One rate limit on model calls across every worker process, without using up retry budgets."""

from __future__ import annotations

from movie_gen.store.job_model import parse_timestamp


def test_two_workers_never_start_calls_faster_than_the_limit(make_stack):
    stack = make_stack(workers=2, concurrency=2, LLM_RATE_LIMIT="4/second", OFFLINE_LATENCY_S="0.01")
    job_id = stack.generate(idea="Crowded skies", total_segments=12, segments_per_set=1, max_retries=0)
    job = stack.wait_job(job_id, timeout=60)
    result = job["result"]
    # max_retries=0 and yet every set succeeded: waiting for the limit is not a retry
    assert job["state"] == "completed", result
    history = result["story_bible"]["attempt_history"] + [
        a for s in result["sets"] for a in s["attempt_history"]]
    assert len(history) == 13 and all(a["outcome"] == "success" for a in history)
    starts = sorted(parse_timestamp(a["started_at"]) for a in history)
    # At most 4 starts in any one second. `started_at` is stamped once a call's slot has come, so
    # on a busy machine it can lag its slot by a scheduling delay: 0.2 s of slack for that.
    for first, fifth in zip(starts, starts[4:]):
        assert fifth - first >= 0.8, starts
    assert starts[-1] - starts[0] >= 2.0
    assert len(stack.workers) == 2 and all(w.proc.poll() is None for w in stack.workers)
