"""The fault table of docs/reliability.md, measured on each broker with the default settings
(LEASE_TTL_S=60, RECOVERY_INTERVAL_S=10, DELIVERY_LIMIT=3).

    python bench/recovery.py                       # every fault on both brokers (about 10 minutes)
    python bench/recovery.py --broker rabbitmq     # one broker
    python bench/recovery.py --fault worker_killed # one fault (see FAULTS)

Real processes on this machine: redis-server on a free port, `celery -A workers worker`, the app
over HTTP, llmock (an OpenAI-compatible server whose request journal counts the paid calls) or the
offline writer. RabbitMQ is the one at 127.0.0.1:5672, on a vhost made for the run and deleted
after. Writes docs/reliability.json (merged with the figures already there).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import Stack, openai_env  # noqa: E402
from tests.servers import LLMockServer, RabbitMQVhosts, RedisServer, wait_until  # noqa: E402
from tests.test_budget import SIX_SET_BIBLE  # noqa: E402

OUT = ROOT / "docs" / "reliability.json"
LATENCY = {"OFFLINE_LATENCY_S": "2"}


class Bench:
    """What every fault needs: a work folder, the broker, the model server."""

    def __init__(self, work: Path, broker: str, vhosts: RabbitMQVhosts, llmock: LLMockServer) -> None:
        self.work, self.broker, self.vhosts, self.llmock = work, broker, vhosts, llmock
        self.server = RedisServer(self._dir("redis"))

    def _dir(self, name: str) -> Path:
        path = self.work / f"{self.broker}-{name}"
        path.mkdir()
        return path

    def stack(self, name: str, env: dict[str, str], server: RedisServer | None = None,
              workers: int = 1, concurrency: int = 2) -> Stack:
        if self.broker == "rabbitmq":
            env = {**env, "BROKER_URL": self.vhosts.new()}
        return Stack(server or self.server, self._dir(name), env, workers, concurrency)

    def own_redis(self, name: str, appendonly: bool) -> RedisServer:
        return RedisServer(self._dir(name), appendonly=appendonly)


def running(stack: Stack, job_id: str, count: int, unit: str = "sets") -> None:
    def check() -> bool:
        job = stack.store.get(job_id)
        if unit == "bible":
            return job["bible_record"]["status"] == "running"
        return sum(s["status"] == "running" for s in job["sets"]) >= count
    wait_until(check, 60, f"{count} running {unit}")


def worker_killed(bench: Bench) -> dict:
    """A worker killed whole (SIGKILL of its process group) mid-set; a new worker is started."""
    stack = bench.stack("killed", LATENCY)
    try:
        job_id = stack.generate(idea="The lighthouse goes dark", total_segments=4, segments_per_set=1)
        running(stack, job_id, 2)
        worker = stack.workers.pop()
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        killed = time.monotonic()
        stack.start_workers(1)
        job = stack.wait_job(job_id, timeout=600)
        return {"state": job["state"], "kill_to_end_s": round(time.monotonic() - killed, 1),
                "model_calls": stack.store.get(job_id)["llm_calls"], "allowed_calls": 5,
                "recovery_resends": stack.logs().count("unit lost with its worker")}
    finally:
        stack.stop()


def dropped_connection(bench: Bench) -> dict:
    """Every broker connection of the stack closed while two sets run."""
    stack = bench.stack("dropped", {"OFFLINE_LATENCY_S": "3"}, concurrency=4)
    try:
        job_id = stack.generate(idea="Static on the line", total_segments=2, segments_per_set=1)
        running(stack, job_id, 2)
        if bench.broker == "rabbitmq":
            vhost = stack.env["BROKER_URL"].rsplit("/", 1)[1]
            bench.vhosts.ctl("close_all_connections", "-p", vhost, "bench")
        else:
            stack.store.redis.client_kill_filter(_type="normal", skipme=True)
        job = stack.wait_job(job_id, timeout=300)
        return {"state": job["state"], "duplicate_deliveries_backed_off": stack.logs().count("backs off"),
                "model_calls": stack.store.get(job_id)["llm_calls"], "allowed_calls": 3}
    finally:
        stack.stop()


def _outage(bench: Bench, name: str, appendonly: bool, cut: Callable[[RedisServer], None],
            restore: Callable[[RedisServer], None], seconds: float) -> dict:
    """The job store's Redis away for `seconds` during a 32 s model call (the bible's)."""
    bench.llmock.reset()
    bench.llmock.script({"type": "delay", "seconds": 32, "times": 1})
    server = bench.own_redis(f"{name}-redis", appendonly)
    stack = bench.stack(name, openai_env(bench.llmock, OPENAI_TIMEOUT_S="90"), server=server)
    try:
        job_id = stack.generate(idea="The storm takes the power", total_segments=1, segments_per_set=1)
        running(stack, job_id, 1, unit="bible")
        cut(server)
        threading.Event().wait(seconds)
        restore(server)
        back = time.monotonic()
        job = stack.wait_job(job_id, timeout=300)
        return {"state": job["state"], "back_to_end_s": round(time.monotonic() - back, 1),
                "model_calls": len(bench.llmock.chat_requests()), "allowed_calls": 2,
                "worker_lost": json.dumps(job["result"]).count("worker_lost"),
                "workers_alive": all(w.proc.poll() is None for w in stack.workers)}
    finally:
        stack.stop()
        server.stop()


def redis_paused(bench: Bench) -> dict:
    """redis-server stopped with SIGSTOP for 25 s mid-call, then SIGCONT."""
    return _outage(bench, "paused", False, lambda s: os.kill(s.proc.pid, signal.SIGSTOP),
                   lambda s: os.kill(s.proc.pid, signal.SIGCONT), 25)


def redis_restarted(bench: Bench) -> dict:
    """redis-server (append-only) shut down for 25 s mid-call, then started again."""
    return _outage(bench, "restarted", True, RedisServer.stop, RedisServer.start, 25)


def poison_set(bench: Bench) -> dict:
    """A set whose attempt kills its pool process every time (OFFLINE_CRASH_SETS)."""
    stack = bench.stack("poison", {"OFFLINE_CRASH_SETS": "2"})
    try:
        started = time.monotonic()
        job_id = stack.generate(idea="The cursed reel", total_segments=3, segments_per_set=1)
        job = stack.wait_job(job_id, timeout=300)
        return {"state": job["state"], "submit_to_end_s": round(time.monotonic() - started, 1),
                "error": job["result"]["sets"][1].get("error")}
    finally:
        stack.stop()


def budget(bench: Bench) -> dict:
    """Six sets whose every 2 s call fails validation, max_retries=2, two workers of one slot."""
    bench.llmock.reset()
    bench.llmock.script({"type": "reply", "text": json.dumps(SIX_SET_BIBLE)},
                        {"type": "reply", "text": "not json at all", "times": None},
                        {"type": "delay", "seconds": 2, "times": None})
    stack = bench.stack("budget", openai_env(bench.llmock), workers=2, concurrency=1)
    try:
        job_id = stack.generate(idea="A song from the trench", total_segments=6, segments_per_set=1,
                                max_retries=2)
        job = stack.wait_job(job_id, timeout=600)
        return {"state": job["state"], "model_calls": len(bench.llmock.chat_requests()),
                "allowed_calls": 1 + 6 * 3, "recovery_resends": stack.logs().count("unit lost with its worker")}
    finally:
        stack.stop()


def cancelled(bench: Bench) -> dict:
    """A cancel while two 3 s sets run: the job is `cancelling`, then `cancelled`, then still."""
    stack = bench.stack("cancel", {"OFFLINE_LATENCY_S": "3"})
    try:
        job_id = stack.generate(idea="The night shift ends", total_segments=6, segments_per_set=1)
        running(stack, job_id, 2)
        asked = time.monotonic()
        answer = stack.post(f"/jobs/{job_id}/cancel").json()["state"]
        job = stack.wait_job(job_id, timeout=120)
        ended = time.monotonic() - asked
        seen = stack.store.get(job_id)
        threading.Event().wait(5)  # longer than any set: a late write would show by now
        return {"answer": answer, "state": job["state"], "cancel_to_end_s": round(ended, 1),
                "changed_after_final": stack.store.get(job_id) != seen}
    finally:
        stack.stop()


FAULTS = {f.__name__: f for f in (worker_killed, dropped_connection, redis_paused, redis_restarted,
                                  poison_set, budget, cancelled)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", choices=("redis", "rabbitmq", "both"), default="both")
    parser.add_argument("--fault", choices=sorted(FAULTS), action="append")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="movie-gen-recovery-"))
    earlier = json.loads(OUT.read_text()) if OUT.exists() else {}
    figures = {k: v for k, v in earlier.items() if k in ("redis", "rabbitmq")}
    figures.update(date=date.today().isoformat(), settings="defaults (LEASE_TTL_S=60, "
                   "RECOVERY_INTERVAL_S=10, DELIVERY_LIMIT=3)")
    vhosts, llmock = RabbitMQVhosts(), LLMockServer(work / "llmock.log")
    try:
        for broker in (("redis", "rabbitmq") if args.broker == "both" else (args.broker,)):
            bench = Bench(work, broker, vhosts, llmock)
            try:
                for name in args.fault or FAULTS:
                    figures.setdefault(broker, {})[name] = result = FAULTS[name](bench)
                    print(broker, name, json.dumps(result), flush=True)
            finally:
                bench.server.stop()
    finally:
        llmock.stop()
        vhosts.delete_all()
    OUT.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
