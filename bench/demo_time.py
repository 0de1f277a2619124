"""Time `movie-gen demo` end to end (embedded Redis, offline writer): python bench/demo_time.py [runs]."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def _dead_redis_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


def main(runs: int) -> None:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "REDIS_URL": _dead_redis_url(), "MOVIE_GEN_HOME": home,
                   "OUTPUT_ROOT": os.path.join(home, "output"), "LLM_PROVIDER": "offline"}
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "movie_gen", "demo"], env=env, cwd=home, check=True,
                           stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
    print(f"movie-gen demo, {runs} runs: median {statistics.median(times):.1f} s, "
          f"min {min(times):.1f} s, max {max(times):.1f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
