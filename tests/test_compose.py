"""docker-compose.yml, Dockerfile and .env.example: what the deployment files promise, checked."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from celery import Celery

from movie_gen.config.settings import Settings
from movie_gen.execution.canvas import ASSEMBLE_TASK, BIBLE_TASK, ERROR_TASK, SET_TASK

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
APP_SERVICES = ("web", "worker", "flower")
DOCKER_COMPOSE = shutil.which("docker-compose")
needs_docker_compose = pytest.mark.skipif(
    DOCKER_COMPOSE is None,
    reason="docker-compose is not on PATH (CI installs it: apt-get install docker-compose)")


@pytest.fixture(scope="module")
def compose_text() -> str:
    return COMPOSE_FILE.read_text()


@pytest.fixture(scope="module")
def compose(compose_text: str) -> dict[str, Any]:
    return yaml.safe_load(compose_text)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


@pytest.fixture(scope="module")
def shared_env(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["x-app-env"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    """Names documented in .env.example (commented-out `# NAME=` lines included), with values."""
    names = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"#?\s*([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            names[match.group(1)] = match.group(2)
    return names


def command(service: dict[str, Any]) -> str:
    cmd = service["command"]
    return " ".join(cmd) if isinstance(cmd, list) else cmd


def healthcheck(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def volume_at(service: dict[str, Any], target: str) -> str:
    """The source of the one volume a service mounts at `target`."""
    sources = [v.split(":")[0] for v in service.get("volumes", []) if v.split(":")[1] == target]
    assert len(sources) == 1, f"expected one volume at {target}, got {sources}"
    return sources[0]


def seconds(duration: str) -> int:
    """A compose duration such as `120s` or `2m` in seconds."""
    match = re.fullmatch(r"(\d+)(s|m)", duration)
    assert match, f"unexpected duration {duration!r}"
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_services_exist(services: dict[str, Any]) -> None:
    assert {"rabbitmq", "redis", "web", "worker", "flower"} <= set(services)


def test_long_running_services_restart_and_wait_for_their_stores(services: dict[str, Any]) -> None:
    for name in ("rabbitmq", "redis", *APP_SERVICES):
        assert services[name]["restart"] == "unless-stopped", name
    for name in APP_SERVICES:
        for store in ("rabbitmq", "redis"):
            assert services[name]["depends_on"][store] == {"condition": "service_healthy"}, name


def test_rabbitmq_is_the_broker_durable_and_checked(compose: dict[str, Any], services: dict[str, Any],
                                                  shared_env: dict[str, Any]) -> None:
    rabbitmq = services["rabbitmq"]
    assert rabbitmq["image"].startswith("rabbitmq:3.13")
    assert rabbitmq["hostname"] == "rabbitmq"  # the node name, hence the data directory, is stable
    assert volume_at(rabbitmq, "/var/lib/rabbitmq") in compose["volumes"], \
        "RabbitMQ data must be on a named volume"
    assert "rabbitmq-diagnostics" in healthcheck(rabbitmq)
    assert "ports" not in rabbitmq  # reached by the services only
    env = rabbitmq["environment"]
    assert env["RABBITMQ_DEFAULT_PASS"].startswith("${RABBITMQ_PASSWORD:?")
    broker = shared_env["BROKER_URL"]
    assert broker.startswith(f"amqp://{env['RABBITMQ_DEFAULT_USER']}:${{RABBITMQ_PASSWORD:?")
    assert broker.endswith(f"@rabbitmq:5672/{env['RABBITMQ_DEFAULT_VHOST']}")


def test_redis_is_durable_and_checked(compose: dict[str, Any], services: dict[str, Any]) -> None:
    redis = services["redis"]
    cmd = command(redis)
    assert redis["image"].startswith("redis:7")
    assert "--appendonly yes" in cmd
    assert "--maxmemory-policy noeviction" in cmd
    assert "redis-cli ping" in healthcheck(redis)
    assert volume_at(redis, "/data") in compose["volumes"], "Redis data must be on a named volume"


def test_web_runs_gunicorn_on_the_app_factory(services: dict[str, Any]) -> None:
    web = services["web"]
    cmd = command(web)
    assert cmd.startswith("gunicorn ")
    assert cmd.endswith("movie_gen:create_app()")
    assert "--config=python:movie_gen.config.gunicorn_conf" in cmd  # gevent workers, timeouts
    assert "--bind=0.0.0.0:8000" in cmd
    assert "http://127.0.0.1:8000/healthz" in healthcheck(web)
    from movie_gen.config import gunicorn_conf

    assert gunicorn_conf.worker_class == "gevent"


def test_worker_runs_celery_and_stops_gracefully(services: dict[str, Any]) -> None:
    worker = services["worker"]
    cmd = command(worker)
    assert cmd.startswith("celery -A workers worker")
    assert "--concurrency=${WORKER_CONCURRENCY:-" in cmd
    assert worker["stop_signal"] == "SIGTERM"
    assert seconds(worker["stop_grace_period"]) >= 120


def test_flower_requires_basic_auth(services: dict[str, Any], compose_text: str) -> None:
    flower = services["flower"]
    assert command(flower).startswith("celery -A workers flower")
    assert "--port=5555" in command(flower)
    assert "--conf=/app/movie_gen/config/flower_conf.py" in command(flower)  # /metrics behind the login
    assert flower["ports"] == ["127.0.0.1:${FLOWER_PORT:-5555}:5555"]  # the host's loopback only
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert "--unauthenticated" not in compose_text
    assert "FLOWER_UNAUTHENTICATED_API" not in compose_text


def test_app_services_share_one_environment(services: dict[str, Any],
                                            shared_env: dict[str, Any]) -> None:
    assert services["web"]["environment"] == shared_env
    assert services["worker"]["environment"] == shared_env
    # Flower adds only its login to the shared mapping; web and worker never see that secret.
    flower_env = dict(services["flower"]["environment"])
    assert set(flower_env) - set(shared_env) == {"FLOWER_BASIC_AUTH"}
    del flower_env["FLOWER_BASIC_AUTH"]
    assert flower_env == shared_env
    assert shared_env["REDIS_URL"] == "redis://redis:6379/0"


def test_output_root_is_a_volume_shared_by_web_and_worker(compose: dict[str, Any],
                                                         services: dict[str, Any],
                                                         shared_env: dict[str, Any]) -> None:
    output_root = shared_env["OUTPUT_ROOT"]
    web, worker = (volume_at(services[name], output_root) for name in ("web", "worker"))
    assert web == worker
    assert web in compose["volumes"], "OUTPUT_ROOT must be a named volume"


def test_every_variable_is_documented(compose_text: str, shared_env: dict[str, Any],
                                      env_example: dict[str, str]) -> None:
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", compose_text))
    missing = (set(shared_env) | interpolated) - set(env_example)
    assert not missing, f"not in .env.example: {sorted(missing)}"


def test_env_example_leaves_the_secrets_to_the_user(env_example: dict[str, str]) -> None:
    assert env_example["FLOWER_BASIC_AUTH"] == ""
    assert env_example["RABBITMQ_PASSWORD"] == ""


def test_commands_point_at_real_entry_points() -> None:
    from gunicorn.util import import_app

    assert import_app("movie_gen:create_app()").name == "movie_gen"
    workers = importlib.import_module("workers")
    assert isinstance(workers.app, Celery)
    assert {BIBLE_TASK, SET_TASK, ASSEMBLE_TASK, ERROR_TASK} <= set(workers.app.tasks)
    assert importlib.util.find_spec("flower") is not None


def test_dockerfile_caches_dependencies_and_drops_root() -> None:
    lines = [line.strip() for line in (ROOT / "Dockerfile").read_text().splitlines()]
    steps = [line for line in lines if line and not line.startswith("#")]
    assert steps[0] == "FROM python:3.11-slim"
    order = ("COPY requirements.txt", "RUN pip install -r requirements.txt", "COPY . .")
    first = [next(i for i, step in enumerate(steps) if step.startswith(prefix)) for prefix in order]
    assert first == sorted(first), f"expected {order} in this order"
    users = [s.split()[1] for s in steps if s.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".env", "output", "**/__pycache__", ".pytest_cache"} <= ignored


def run_config(tmp_path: Path, env_file: Path | None = None, args: tuple[str, ...] = ("-f", str(COMPOSE_FILE)),
               **env: str) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` on our file (or the files and profiles of `args`), without the
    caller's .env or secrets (a RabbitMQ password is given unless `env` says otherwise)."""
    if env_file is None:
        env_file = tmp_path / "empty.env"
        env_file.write_text("")
    base = {k: v for k, v in os.environ.items() if k not in ("FLOWER_BASIC_AUTH", "RABBITMQ_PASSWORD")}
    env = {"RABBITMQ_PASSWORD": "rabbitsecret", **env}
    return subprocess.run(
        [DOCKER_COMPOSE, *args, "--env-file", str(env_file), "config"],
        cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60)


@needs_docker_compose
@pytest.mark.timeout(90)
def test_compose_config_accepts_the_file(tmp_path: Path) -> None:
    result = run_config(tmp_path, FLOWER_BASIC_AUTH="admin:secret")
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)["services"]
    assert resolved["flower"]["environment"]["FLOWER_BASIC_AUTH"] == "admin:secret"
    assert "FLOWER_BASIC_AUTH" not in resolved["web"]["environment"]
    assert resolved["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"] == "rabbitsecret"
    broker = resolved["worker"]["environment"]["BROKER_URL"]
    assert broker == "amqp://movie_gen:rabbitsecret@rabbitmq:5672/movie_gen"
    assert Settings.from_env({"BROKER_URL": broker}).broker_is_rabbitmq


@needs_docker_compose
@pytest.mark.timeout(90)
def test_compose_config_refuses_a_broker_without_a_password(tmp_path: Path) -> None:
    result = run_config(tmp_path, FLOWER_BASIC_AUTH="admin:secret", RABBITMQ_PASSWORD="")
    assert result.returncode != 0
    assert "RABBITMQ_PASSWORD" in result.stderr


@needs_docker_compose
@pytest.mark.timeout(90)
@pytest.mark.parametrize("env_file", [None, ROOT / ".env.example"],
                         ids=["no-env-file", "env-example"])
def test_compose_config_refuses_open_flower(tmp_path: Path, env_file: Path | None) -> None:
    result = run_config(tmp_path, env_file)
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stderr


@needs_docker_compose
@pytest.mark.timeout(90)
@pytest.mark.parametrize("env, refused", [
    ({}, True), ({"ALLOW_NO_API_KEYS": "true"}, False), ({"MOVIE_GEN_API_KEYS": "k1"}, False)],
    ids=["no-keys", "explicit-opt-out", "keys"])
def test_compose_web_refuses_an_open_api_without_the_opt_out(tmp_path: Path, env: dict[str, str],
                                                            refused: bool) -> None:
    from movie_gen import create_app
    from movie_gen.config.settings import Settings, SettingsError

    result = run_config(tmp_path, FLOWER_BASIC_AUTH="admin:secret", **env)
    assert result.returncode == 0, result.stderr
    web_env = {k: str(v) for k, v in yaml.safe_load(result.stdout)["services"]["web"]["environment"].items()}
    settings = Settings.from_env({**web_env, "OUTPUT_ROOT": str(tmp_path)})
    if refused:
        with pytest.raises(SettingsError, match="ALLOW_NO_API_KEYS"):
            create_app({"SETTINGS": settings})
    else:
        create_app({"SETTINGS": settings})


@needs_docker_compose
@pytest.mark.timeout(120)
def test_compose_flower_refuses_its_api_and_metrics_without_credentials(tmp_path: Path, redis_server,
                                                                      rabbitmq) -> None:
    """The flower service's resolved command and environment, run here against the suite's Redis
    and a vhost of the machine's RabbitMQ (the broker of compose)."""
    import requests

    from .servers import free_port, stop_process, wait_until

    result = run_config(tmp_path, FLOWER_BASIC_AUTH="admin:secret")
    flower = yaml.safe_load(result.stdout)["services"]["flower"]
    port = free_port()
    cmd = [arg.replace("/app/", f"{ROOT}/").replace("--port=5555", f"--port={port}")
           for arg in flower["command"]] + ["--address=127.0.0.1"]
    env = {**os.environ, **{k: str(v) for k, v in flower["environment"].items()},
           "BROKER_URL": rabbitmq.new(), "REDIS_URL": redis_server.url(63), "OUTPUT_ROOT": str(tmp_path),
           "PYTHONPATH": str(ROOT)}
    env.pop("FLOWER_UNAUTHENTICATED_API", None)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: requests.get(base + "/healthcheck", timeout=2).ok, 60, "Flower")
        for path in ("/api/workers", "/api/tasks", "/metrics"):
            assert requests.get(base + path, timeout=10).status_code == 401, path
        assert requests.get(base + "/metrics", auth=("admin", "secret"), timeout=10).status_code == 200
    finally:
        stop_process(proc)


S3_FILE = ROOT / "docker-compose.s3.yml"
SEVERAL_MACHINES = ("-f", str(COMPOSE_FILE), "-f", str(S3_FILE), "--profile", "several-machines")


def test_the_several_machines_file_documents_its_variables(env_example: dict[str, str]) -> None:
    text = S3_FILE.read_text()
    names = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text)) | set(yaml.safe_load(text)["x-s3-env"])
    assert not names - set(env_example), f"not in .env.example: {sorted(names - set(env_example))}"
    assert env_example["MINIO_ROOT_PASSWORD"] == ""


@needs_docker_compose
@pytest.mark.timeout(90)
def test_several_machines_share_no_volume_and_write_to_one_bucket(tmp_path: Path) -> None:
    from movie_gen.storage.object_store import open_store

    refused = run_config(tmp_path, args=SEVERAL_MACHINES, FLOWER_BASIC_AUTH="admin:secret")
    assert refused.returncode != 0 and "MINIO_ROOT_PASSWORD" in refused.stderr
    result = run_config(tmp_path, args=SEVERAL_MACHINES, FLOWER_BASIC_AUTH="admin:secret",
                        MINIO_ROOT_PASSWORD="miniosecret")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {"minio", "minio-bucket", "worker", "worker-2"} <= set(services)
    assert "mc ready local" in healthcheck(services["minio"])
    bucket = services["minio-bucket"]["environment"]["S3_BUCKET"]
    urls = set()
    for name in ("web", "worker", "worker-2"):
        service = services[name]
        assert all(isinstance(v, dict) and v["type"] == "tmpfs" for v in service.get("volumes", [])), name
        env = {k: str(v) for k, v in service["environment"].items()}
        assert env["AWS_ENDPOINT_URL"] == "http://minio:9000" and env["AWS_SECRET_ACCESS_KEY"] == "miniosecret"
        assert services[name]["depends_on"]["minio-bucket"] == {"condition": "service_completed_successfully"}
        store = open_store(Settings.from_env(env))
        assert (store.bucket, store.prefix) == (bucket, "scripts")
        urls.add(env["OUTPUT_URL"])
    assert urls == {f"s3://{bucket}/scripts"}
    assert command(services["worker-2"]) == command(services["worker"])
    alone = yaml.safe_load(run_config(tmp_path, FLOWER_BASIC_AUTH="admin:secret").stdout)["services"]
    assert alone["worker-2"]["profiles"] == ["several-machines"]  # docker compose up alone: one worker
