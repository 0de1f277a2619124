"""Recovery times with the default settings (LEASE_TTL_S=20, RECOVERY_INTERVAL_S=10): a worker
killed whole, Redis down for 10 s, a dropped broker connection, a set that kills its worker.

    python bench/recovery.py

Real processes on this machine: redis-server, `celery -A workers worker`, the app over HTTP, the
offline writer with 2 s per call. Writes docs/reliability.json; about 4 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import Stack  # noqa: E402
from tests.servers import RedisServer  # noqa: E402

LATENCY = {"OFFLINE_LATENCY_S": "2"}


def wait_running(stack: Stack, job_id: str, count: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while sum(s["status"] == "running" for s in stack.store.get(job_id)["sets"]) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("sets did not start")
        time.sleep(0.05)


def wait_final(stack: Stack, job_id: str, timeout: float = 300) -> dict:
    return stack.wait_job(job_id, timeout=timeout)


def worker_killed_whole(server: RedisServer, work: Path) -> dict:
    stack = Stack(server, work / "killed", LATENCY, workers=1, concurrency=2)
    try:
        job_id = stack.generate(idea="The lighthouse goes dark", total_segments=4, segments_per_set=1)
        wait_running(stack, job_id, 2)
        worker = stack.workers.pop()
        os.killpg(worker.proc.pid, signal.SIGKILL)
        worker.proc.wait()
        killed = time.monotonic()
        stack.start_workers(1)
        job = wait_final(stack, job_id)
        return {"state": job["state"], "kill_to_completed_s": round(time.monotonic() - killed, 1),
                "model_calls": stack.store.get(job_id)["llm_calls"], "sets": 4}
    finally:
        stack.stop()


def redis_down(work: Path) -> dict:
    (work / "aof").mkdir()
    server = RedisServer(work / "aof", appendonly=True)
    (work / "redis-down").mkdir()
    stack = Stack(server, work / "redis-down", LATENCY, workers=1, concurrency=2)
    try:
        job_id = stack.generate(idea="The storm takes the power", total_segments=4, segments_per_set=1)
        wait_running(stack, job_id, 2)
        server.stop()
        time.sleep(10)
        server.start()
        back = time.monotonic()
        job = wait_final(stack, job_id)
        return {"state": job["state"], "redis_back_to_completed_s": round(time.monotonic() - back, 1),
                "model_calls": stack.store.get(job_id)["llm_calls"], "sets": 4}
    finally:
        stack.stop()
        server.stop()


def dropped_connection(server: RedisServer, work: Path) -> dict:
    stack = Stack(server, work / "dropped", {"OFFLINE_LATENCY_S": "3"}, workers=1, concurrency=4)
    try:
        job_id = stack.generate(idea="Static on the line", total_segments=2, segments_per_set=1)
        wait_running(stack, job_id, 2)
        stack.store.redis.client_kill_filter(_type="normal", skipme=True)
        job = wait_final(stack, job_id)
        return {"state": job["state"], "duplicate_deliveries_backed_off": stack.logs().count("backs off"),
                "model_calls": stack.store.get(job_id)["llm_calls"], "sets": 2}
    finally:
        stack.stop()


def poison_set(server: RedisServer, work: Path) -> dict:
    stack = Stack(server, work / "poison", {"OFFLINE_CRASH_SETS": "2"}, workers=1, concurrency=2)
    try:
        started = time.monotonic()
        job_id = stack.generate(idea="The cursed reel", total_segments=3, segments_per_set=1)
        job = wait_final(stack, job_id)
        return {"state": job["state"], "submit_to_partial_s": round(time.monotonic() - started, 1),
                "error": job["result"]["sets"][1].get("error")}
    finally:
        stack.stop()


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="movie-gen-recovery-"))
    for name in ("killed", "dropped", "poison"):
        (work / name).mkdir()
    server = RedisServer(work)
    try:
        figures = {"date": date.today().isoformat(), "settings": "defaults (LEASE_TTL_S=20, "
                   "RECOVERY_INTERVAL_S=10, DELIVERY_LIMIT=3), offline writer 2 s per call",
                   "worker_killed_whole": worker_killed_whole(server, work),
                   "dropped_broker_connection": dropped_connection(server, work),
                   "poison_set": poison_set(server, work)}
    finally:
        server.stop()
    figures["redis_down_10s"] = redis_down(work)
    out = ROOT / "docs" / "reliability.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
