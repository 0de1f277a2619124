"""2,000 event streams on one web process: python bench/event_streams.py [streams] [--keys].

Starts a redis-server on a free port and the web app under gunicorn with its production settings
(gevent, one process), creates a job in the store, opens the streams (`GET /jobs/<id>/events`),
then changes the job's sets one at a time with the job store's own writes, as a worker does, and
times each change from the write to its arrival in every stream. Redis connections are counted
with CLIENT LIST (the bench's own connection is named and left out). Loopback only; every loop is
bounded. With `--keys`, the API runs with an API key and every stream sends it.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from movie_gen.api.auth import key_id  # noqa: E402
from movie_gen.store.job_model import UnitStatus
from movie_gen.store.job_store import JobStore
from tests.servers import ROOT, RedisServer, free_port, stop_process, wait_until  # noqa: E402

SETS = 10
KEY, SECRET = "bench-key", "bench-secret"


class Stream:
    """One client: an HTTP/1.0 GET of the event stream (no chunking), read line by line."""

    def __init__(self) -> None:
        self.seen: dict[tuple[int, str], float] = {}
        self.ended = asyncio.Event()
        self.ready = asyncio.Event()

    async def run(self, port: int, job_id: str, keys: bool) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        auth = f"Authorization: Bearer {KEY}\r\n" if keys else ""
        writer.write(f"GET /jobs/{job_id}/events HTTP/1.0\r\nHost: bench\r\n{auth}\r\n".encode())
        kind = None
        try:
            while line := await reader.readline():
                if line.startswith(b"event: "):
                    kind = line[7:].strip()
                elif line.startswith(b"data: ") and kind == b"set":
                    data = json.loads(line[6:])
                    self.seen.setdefault((data["set_number"], data["status"]), time.perf_counter())
                    if data["set_number"] == SETS:
                        self.ready.set()  # the snapshot has arrived
                elif line.startswith(b"data: ") and kind == b"end":
                    self.ended.set()
                    break
        finally:
            writer.close()


def web_connections(client: redis.Redis) -> int:
    return sum(1 for c in client.client_list() if c.get("name") != "bench")


def _established(port: int) -> int:
    """TCP connections in state ESTABLISHED on local port `port` (from /proc/net/tcp)."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for r in rows if r.split()[1].endswith(f":{port:04X}") and r.split()[3] == "01")


def _p(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


async def measure(port: int, store: JobStore, job_id: str, streams: int, keys: bool) -> dict:
    clients = [Stream() for _ in range(streams)]
    tasks = []
    for start in range(0, streams, 200):  # open them 200 at a time
        tasks += [asyncio.create_task(c.run(port, job_id, keys)) for c in clients[start:start + 200]]
        await asyncio.wait_for(asyncio.gather(*(c.ready.wait() for c in clients[:start + 200])), 60)
    peak = web_connections(store.redis)
    delays: list[float] = []
    changes = [(n, status) for n in range(1, SETS + 1) for status in (UnitStatus.RUNNING, UnitStatus.SUCCESS)]
    for number, status in changes:
        written = time.perf_counter()
        allowed = (UnitStatus.PENDING,) if status == UnitStatus.RUNNING else (UnitStatus.RUNNING,)
        assert store.update_unit_if(job_id, number, allowed, status)
        deadline = time.monotonic() + 30
        while any((number, status) not in c.seen for c in clients) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        got = [c.seen[(number, status)] - written for c in clients if (number, status) in c.seen]
        assert len(got) == streams, f"{streams - len(got)} streams missed set {number} {status}"
        delays += got
        peak = max(peak, web_connections(store.redis))
    store.set_state(job_id, "completed")
    await asyncio.wait_for(asyncio.gather(*(c.ended.wait() for c in clients)), 60)
    await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
    return {"delays": delays, "peak": peak, "changes": len(changes)}


def main(streams: int, keys: bool) -> None:
    with tempfile.TemporaryDirectory() as home:
        redis_server = RedisServer(Path(home))
        port = free_port()
        env = {**os.environ, "REDIS_URL": redis_server.url(1), "OUTPUT_ROOT": f"{home}/output",
               "PYTHONPATH": str(ROOT), "WEB_WORKERS": "1", "WEB_CONNECTIONS": str(streams + 100),
               "LOG_LEVEL": "WARNING", "MOVIE_GEN_API_KEYS": KEY if keys else "", "MOVIE_GEN_SECRET": SECRET,
               "AUTH_FAILURE_LIMIT": "100/minute"}
        log = open(Path(home) / "gunicorn.log", "ab")
        web = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "python:movie_gen.config.gunicorn_conf",
                                "--bind", f"127.0.0.1:{port}", "movie_gen:create_app()"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        store = JobStore(redis.Redis.from_url(env["REDIS_URL"], decode_responses=True, client_name="bench"),
                         3600)
        try:
            wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2).ok, 30,
                       "gunicorn")
            job_id = "e" * 32
            store.create(job_id, {"idea": "bench", "total_segments": SETS, "segments_per_set": 1,
                                  "max_retries": 0, "output_directory": "bench"},
                         [{"set_number": n, "first_segment": n, "last_segment": n, "task_id": f"t{n}"}
                          for n in range(1, SETS + 1)], "offline", key_id(KEY, SECRET) if keys else None)
            before = web_connections(store.redis)
            started = time.perf_counter()
            result = asyncio.run(measure(port, store, job_id, streams, keys))
            took = time.perf_counter() - started
            time.sleep(1)
            after = web_connections(store.redis)
            delays = result["delays"]
            print(f"{streams} streams{' with an API key' if keys else ''}, {result['changes']} changes, {len(delays)} deliveries in {took:.1f} s")
            print(f"delay from the write to each stream: p50 {statistics.median(delays) * 1000:.0f} ms, "
                  f"p99 {_p(delays, 0.99):.0f} ms, max {max(delays) * 1000:.0f} ms")
            print(f"Redis connections of the web process: before {before}, at most {result['peak']} "
                  f"with the streams open, {after} after they closed")
            print(f"client connections still open on the web port afterwards: {_established(port)}")
        finally:
            stop_process(web)
            log.close()
            redis_server.stop()


if __name__ == "__main__":
    numbers = [a for a in sys.argv[1:] if a.isdigit()]
    main(int(numbers[0]) if numbers else 2000, "--keys" in sys.argv)
