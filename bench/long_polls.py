"""Latency of /healthz and a plain GET while 200 long-polls wait: python bench/long_polls.py [polls].

Real parts: a redis-server, a Celery worker and the web app under gunicorn with its production
settings (gevent workers, WEB_WORKERS=2), as `movie-gen up` runs them.
"""

from __future__ import annotations

import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from celery import Celery  # noqa: E402

from movie_gen.store.job_store import JobStore
from tests.servers import ROOT, GunicornServer, RedisServer, Worker, wait_until  # noqa: E402


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def main(polls: int, samples: int = 300) -> None:
    with tempfile.TemporaryDirectory() as home:
        redis_server = RedisServer(Path(home))
        env = {**os.environ, "REDIS_URL": redis_server.url(1), "OUTPUT_ROOT": f"{home}/output",
               "LLM_PROVIDER": "offline", "OFFLINE_LATENCY_S": "300", "PYTHONPATH": str(ROOT),
               "LONG_POLLS_PER_KEY": str(polls + 50), "WEB_WORKERS": "2", "LOG_LEVEL": "WARNING"}
        worker = Worker(env, Path(home) / "worker.log")
        celery = Celery(broker=env["REDIS_URL"])
        celery.config_from_object("celeryconfig")
        celery.conf.update(broker_url=env["REDIS_URL"], result_backend=env["REDIS_URL"])
        worker.wait_ready(celery)
        server = GunicornServer(env, Path(home) / "gunicorn.log")
        store = JobStore.from_url(env["REDIS_URL"], 3600)
        try:
            job_id = requests.post(server.base_url + "/generate-movie-auto", timeout=10, json={
                "idea": "A storm that never ends", "total_segments": 1}).json()["job_id"]
            request = f"GET /jobs/{job_id}?wait=60 HTTP/1.1\r\nHost: x\r\n\r\n".encode()
            sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(polls)]
            for sock in sockets:
                sock.sendall(request)
            wait_until(lambda: store.redis.zcard("movie_gen:long_polls:127.0.0.1") == polls, 30,
                       "the long-polls to wait")
            for path in ("/healthz", f"/jobs/{job_id}"):
                times = []
                session = requests.Session()
                for _ in range(samples):
                    started = time.perf_counter()
                    assert session.get(server.base_url + path, timeout=5).status_code == 200
                    times.append(time.perf_counter() - started)
                shown = "/jobs/<id>" if path != "/healthz" else path
                print(f"{shown:10} under {polls} long-polls, {samples} requests: "
                      f"p50 {statistics.median(times) * 1000:.1f} ms, p99 {_p(times, 0.99):.1f} ms, "
                      f"max {max(times) * 1000:.1f} ms")
            for sock in sockets:
                sock.close()
        finally:
            server.stop()
            worker.stop()
            redis_server.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
