"""Fixtures: a redis-server the suite starts, stacks of (worker subprocess + app over HTTP), llmock."""

from __future__ import annotations

import gc
import itertools
import os
import shutil
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests

from movie_gen import create_app
from movie_gen.config.settings import Settings
from movie_gen.execution.celery_app import create_celery
from movie_gen.store.job_model import FINAL_STATES
from movie_gen.store.job_store import JobStore

from .servers import (
    ROOT,
    AppServer,
    LLMockServer,
    RabbitMQVhosts,
    RedisServer,
    Worker,
    rabbitmq_answers,
)

FAST_ENV = {"LLM_PROVIDER": "offline", "RETRY_BACKOFF_BASE": "1", "LLM_RATE_LIMIT": "1000/second",
            "LOG_LEVEL": "INFO"}
_databases = itertools.count(100)  # 1-99 are for tests that name their own database


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    gc.collect()  # Celery result handles unsubscribe when collected: let them while Redis is up
    server.stop()


@pytest.fixture
def no_server_caches() -> Iterator[None]:
    """The per-process memory of what model servers accept and report, empty during the test."""
    from movie_gen.llm.server_context import CONTEXTS
    from movie_gen.llm.server_profile import PROFILES

    PROFILES.clear()
    CONTEXTS.clear()
    yield
    PROFILES.clear()
    CONTEXTS.clear()


@pytest.fixture
def fresh_redis_url(redis_server: RedisServer) -> str:
    """A database of the suite's redis-server that no other test or stack uses."""
    return redis_server.url(next(_databases))


class Stack:
    """One isolated deployment: its own Redis database, OUTPUT_ROOT, worker(s) and web app."""

    def __init__(self, redis_server: RedisServer, workdir: Path, env: dict[str, str],
                 workers: int = 1, concurrency: int = 2) -> None:
        self.workdir = workdir
        self.output_root = workdir / "output"
        self.output_root.mkdir()
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("OFFLINE_", "OPENAI_", "RETRY_", "LLM_")) and k != "BROKER_URL"}
        self.env = {**base, **FAST_ENV, "REDIS_URL": redis_server.url(next(_databases)),
                    "OUTPUT_ROOT": str(self.output_root), "PYTHONPATH": str(ROOT), **env}
        self.settings = Settings.from_env(self.env)
        self.store = JobStore.from_url(self.settings.redis_url, self.settings.job_ttl_s)
        self.celery = create_celery(self.settings)
        self.concurrency = concurrency
        self.workers: list[Worker] = []
        self.start_workers(workers)
        self.app = create_app({"SETTINGS": self.settings, "TESTING": True})
        self.server = AppServer(self.app)
        self.base_url = self.server.base_url

    def start_workers(self, count: int = 1, **env: str) -> None:
        self.env.update(env)
        new = [Worker(self.env, self.workdir / f"worker-{len(self.workers) + i}.log",
                      self.concurrency, name=f"w{len(self.workers) + i}") for i in range(count)]
        for worker in new:
            worker.wait_ready(self.celery)
        self.workers.extend(new)

    def restart_workers(self, **env: str) -> None:
        """Stop every worker, then start one with `env` changed (same Redis, same files)."""
        for worker in self.workers:
            worker.stop()
        self.workers = []
        self.start_workers(1, **env)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.post(self.base_url + path, timeout=60, **kwargs)

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.base_url + path, timeout=90, **kwargs)

    def generate(self, **body: Any) -> str:
        response = self.post("/generate-movie-auto", json=body)
        assert response.status_code == 202, response.text
        return response.json()["job_id"]

    def wait_job(self, job_id: str, timeout: float = 60, headers: dict | None = None) -> dict[str, Any]:
        """Long-poll the job URL until the job reaches a final state (bounded by `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"job {job_id} did not end within {timeout}s"
            body = self.get(f"/jobs/{job_id}", params={"wait": min(left, 30), "history": "true"},
                            headers=headers).json()
            if body["state"] in FINAL_STATES:
                return body

    def logs(self) -> str:
        return "\n".join(w.log_path.read_text(errors="replace") for w in self.workers)

    def stop(self) -> None:
        self.server.stop()
        for worker in self.workers:
            worker.stop()


@pytest.fixture(scope="module")
def make_stack(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory):
    """A factory of stacks; every stack it made is stopped at the end of the test module."""
    made: list[Stack] = []

    def factory(workers: int = 1, concurrency: int = 2, **env: str) -> Stack:
        stack = Stack(redis_server, tmp_path_factory.mktemp("stack"), env, workers, concurrency)
        made.append(stack)
        return stack

    yield factory
    for stack in made:
        stack.stop()


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[RabbitMQVhosts]:
    """The RabbitMQ of the machine (127.0.0.1:5672, .ci/run starts one), a vhost per stack."""
    if shutil.which("rabbitmqctl") is None or not rabbitmq_answers():
        pytest.skip("no RabbitMQ at 127.0.0.1:5672 (.ci/run installs and starts rabbitmq-server)")
    vhosts = RabbitMQVhosts()
    yield vhosts
    vhosts.delete_all()


@pytest.fixture(scope="module")
def make_rabbitmq_stack(make_stack, rabbitmq: RabbitMQVhosts):
    """Like `make_stack`, with RabbitMQ as the broker (a vhost of its own); Redis keeps the rest."""
    def factory(workers: int = 1, concurrency: int = 2, **env: str) -> Stack:
        return make_stack(workers, concurrency, BROKER_URL=rabbitmq.new(), **env)

    return factory


@pytest.fixture(scope="module")
def offline_stack(make_stack) -> Stack:
    """The offline writer, no faults, shrunk backoff."""
    return make_stack()


@pytest.fixture(scope="session")
def llmock(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMockServer]:
    server = LLMockServer(tmp_path_factory.mktemp("llmock") / "llmock.log")
    yield server
    server.stop()


def openai_env(llmock: LLMockServer, **extra: str) -> dict[str, str]:
    return {"LLM_PROVIDER": "openai", "OPENAI_API_KEY": "sk-test", "OPENAI_MODEL": "gpt-4o-mini",
            "OPENAI_BASE_URL": llmock.base_url + "/v1", "OPENAI_TIMEOUT_S": "5", **extra}
