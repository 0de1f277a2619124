"""Benchmarks of the execution core: cost per set from 10 to 1000 sets, parallel overhead, the job URL,
and broker messages under a rate limit. Writes docs/performance.md's table and a PNG plot.

    pip install -r bench/requirements.txt && python bench/orchestration.py

Everything runs on this machine: a redis-server on a free port, `celery -A workers worker`
subprocesses, gunicorn for the job URL, the offline writer (no model). About 5 minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from movie_gen.config.settings import Settings
from movie_gen.execution.celery_app import create_celery
from movie_gen.jobs.submit import submit_job
from movie_gen.services import Services  # noqa: E402
from movie_gen.store.job_model import FINAL_STATES
from tests.servers import RedisServer, Worker, free_port, stop_process, wait_until  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
OUT = ROOT / "docs"


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its children (the worker's pool), from /proc."""
    total = 0.0
    for proc in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{proc}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1] == str(pid):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def redis_totals(client: redis.Redis) -> tuple[int, int]:
    stats = client.info("stats")
    return stats["total_commands_processed"], stats["total_net_input_bytes"] + stats["total_net_output_bytes"]


class Deployment:
    """One redis-server database, OUTPUT_ROOT and worker, with the given environment."""

    def __init__(self, server: RedisServer, db: int, workdir: Path, concurrency: int, **env: str) -> None:
        self.env = {**os.environ, "LLM_PROVIDER": "offline", "LLM_RATE_LIMIT": "100000/second",
                    "REDIS_URL": server.url(db), "OUTPUT_ROOT": str(workdir / "output"),
                    "PYTHONPATH": str(ROOT), "LOG_LEVEL": "INFO", **env}
        self.settings = Settings.from_env(self.env)
        self.services = Services(self.settings)
        self.celery = create_celery(self.settings)
        self.client = redis.Redis.from_url(self.settings.redis_url)
        self.worker = Worker(self.env, workdir / f"worker-{db}.log", concurrency, name=f"bench{db}")
        self.worker.wait_ready(self.celery, timeout=60)

    def run_job(self, sets: int) -> dict:
        """Submit a job of `sets` one-segment sets; measure it until it ends."""
        request = {"idea": "A lighthouse keeper finds a map inside a storm", "total_segments": sets,
                   "segments_per_set": 1, "save_to_files": True,
                   "output_directory": f"bench_{sets}", "max_retries": 3}
        time.sleep(1.0)  # let the idle worker settle before the CPU reading
        cpu0, (cmd0, bytes0) = cpu_seconds(self.worker.proc.pid), redis_totals(self.client)
        started = time.monotonic()
        job_id = submit_job(self.services, self.celery, request)
        pubsub = self.services.store.subscribe_final(job_id)
        while self.services.store.get_page(job_id, 1, 0)["state"] not in FINAL_STATES:
            pubsub.get_message(timeout=0.5)
        wall = time.monotonic() - started
        cpu1, (cmd1, bytes1) = cpu_seconds(self.worker.proc.pid), redis_totals(self.client)
        footprint = sum(self.client.memory_usage(k) or 0 for k in self.services.store.keys(job_id))
        return {"job_id": job_id, "sets": sets, "wall_s": wall, "cpu_ms_per_set": 1000 * (cpu1 - cpu0) / sets,
                "wall_ms_per_set": 1000 * wall / sets, "commands_per_set": (cmd1 - cmd0) / sets,
                "bytes_per_set": (bytes1 - bytes0) / sets, "footprint_bytes_per_set": footprint / sets,
                "state": self.services.store.get_page(job_id, 1, 0)["state"]}

    def stop(self) -> None:
        self.worker.stop()


def job_url_load(deployment: Deployment, job_id: str, rate: int = 100, seconds: int = 10) -> dict:
    """GET /jobs/<id> at `rate` requests per second through gunicorn: response size and p99."""
    port = free_port()
    log = open(deployment.worker.log_path.with_name("gunicorn.log"), "ab")
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "movie_gen:create_app()", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--worker-class", "gthread", "--threads", "8"],
        cwd=ROOT, env=deployment.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/jobs/{job_id}"
    try:
        wait_until(lambda: requests.get(url, timeout=2).status_code == 200, 30, "gunicorn")
        size = len(requests.get(url, timeout=5).content)
        latencies: list[float] = []
        lock = threading.Lock()
        session_local = threading.local()

        def one() -> None:
            session = getattr(session_local, "s", None) or requests.Session()
            session_local.s = session
            t0 = time.perf_counter()
            session.get(url, timeout=10)
            with lock:
                latencies.append(time.perf_counter() - t0)

        threads = []
        start = time.perf_counter()
        for i in range(rate * seconds):
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            thread = threading.Thread(target=one)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(timeout=30)
        latencies.sort()
        return {"bytes": size, "requests": len(latencies),
                "p50_ms": 1000 * statistics.median(latencies),
                "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))]}
    finally:
        stop_process(web)
        log.close()


def messages_per_attempt(deployment: Deployment, job_id: str) -> dict:
    log = deployment.worker.log_path.read_text(errors="replace")
    received = len(re.findall(r"Task movie_gen\.(?:generate_set|story_bible)\[[0-9a-f-]+\] received", log))
    job = deployment.services.store.get(job_id)
    attempts = sum(len(s["attempts"]) for s in job["sets"]) + len(job["bible_record"]["attempts"])
    return {"messages": received, "attempts": attempts, "per_attempt": received / attempts}


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["sets"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(sizes, [r["cpu_ms_per_set"] for r in rows], marker="o", label="worker CPU ms / set")
    ax.plot(sizes, [r["wall_ms_per_set"] for r in rows], marker="s", label="wall ms / set")
    ax.plot(sizes, [r["commands_per_set"] for r in rows], marker="^", label="Redis commands / set")
    ax.set_xscale("log")
    ax.set_xlabel("sets in the job")
    ax.set_title("Cost per set against job size (offline writer, concurrency 2)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [10, 100, 1000]
    OUT.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="movie-gen-bench-"))
    server = RedisServer(work)
    figures: dict = {"date": date.today().isoformat(), "cores": os.cpu_count()}
    try:
        core = Deployment(server, 1, work, concurrency=2)
        core.run_job(5)  # warm-up: imports, connections
        figures["orchestration"] = [core.run_job(n) for n in sizes]
        largest = figures["orchestration"][-1]
        figures["job_url"] = job_url_load(core, largest["job_id"])
        core.stop()

        parallel = Deployment(server, 2, work, concurrency=10, OFFLINE_LATENCY_S="1")
        run = parallel.run_job(10)
        sequential = 1 * 11 + 2 * 9  # the bible, then ten 1 s sets one after another, 2 s apart
        figures["parallel"] = {"wall_s": run["wall_s"], "ideal_s": 2.0, "ratio": run["wall_s"] / 2.0,
                               "sequential_s": sequential, "speedup": sequential / run["wall_s"]}
        parallel.stop()

        limited = Deployment(server, 3, work, concurrency=2, OFFLINE_LATENCY_S="0.01",
                             LLM_RATE_LIMIT="10/second")
        run = limited.run_job(max(sizes))
        figures["rate_limited"] = {"sets": max(sizes), "wall_s": run["wall_s"],
                                   **messages_per_attempt(limited, run["job_id"])}
        limited.stop()
    finally:
        server.stop()
    (OUT / "performance.json").write_text(json.dumps(figures, indent=2) + "\n")
    plot(figures["orchestration"], OUT / "performance-cost-per-set.png")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
