"""The `movie-gen` command: up (embedded Redis), generate with live progress, status, retry, demo."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from .servers import ROOT, free_port, wait_until


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("OFFLINE_", "OPENAI_", "RETRY_", "LLM_", "MOVIE_GEN", "REDIS_", "BROKER_"))}
    return {**base, "PYTHONPATH": str(ROOT), "OUTPUT_ROOT": str(tmp_path / "output"),
            "MOVIE_GEN_HOME": str(tmp_path / "home"),
            # nothing listens there, so the embedded Redis is used
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
            "RETRY_BACKOFF_BASE": "1", "LLM_RATE_LIMIT": "1000/second", **extra}


def _cli(*args: str, env: dict[str, str], timeout: float = 90) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "movie_gen", *args], env=env, cwd=env["MOVIE_GEN_HOME"],
                          capture_output=True, text=True, timeout=timeout)


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Up:
    """`movie-gen up` running in the background, its output collected."""

    def __init__(self, env: dict[str, str]) -> None:
        Path(env["MOVIE_GEN_HOME"]).mkdir(parents=True, exist_ok=True)
        self.output: list[str] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "movie_gen", "up"], env=env,
                                     cwd=env["MOVIE_GEN_HOME"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=lambda: self.output.extend(self.proc.stdout), daemon=True).start()
        wait_until(lambda: "Running." in "".join(self.output) or self.proc.poll() is not None, 90,
                   "movie-gen up")
        assert self.proc.poll() is None, "".join(self.output)

    def text(self) -> str:
        return "".join(self.output)


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    port = free_port()
    env = _env(tmp, MOVIE_GEN_PORT=str(port), FLOWER_PORT=str(free_port()), OFFLINE_FAIL_SETS="3",
               OFFLINE_LATENCY_S="0.3")
    server = Up(env)
    yield server, {**env, "MOVIE_GEN_URL": f"http://127.0.0.1:{port}"}
    if server.proc.poll() is None:
        server.proc.kill()


def test_up_prints_the_urls_and_the_model_banner(up):
    server, _ = up
    text = server.text()
    assert "Model: offline writer" in text
    assert "Redis:  embedded" in text and "API:    http://127.0.0.1:" in text and "Flower: http" in text


def test_flower_under_up_refuses_its_api_and_metrics_without_the_printed_login(up):
    server, env = up
    flower = f"http://127.0.0.1:{env['FLOWER_PORT']}"
    login = re.search(r"login (\S+) / (\S+) \(generated for this run", server.text())
    assert login, server.text()
    assert server.text().count(login.group(2)) == 1  # printed once
    for path in ("/api/workers", "/api/tasks", "/metrics", "/"):
        assert requests.get(flower + path, timeout=10).status_code == 401, path
        assert requests.get(flower + path, timeout=10, auth=("movie-gen", "wrong")).status_code == 401
    assert requests.get(flower + "/metrics", timeout=10, auth=login.groups()).status_code == 200
    assert requests.get(flower + "/api/workers", timeout=10, auth=login.groups()).status_code == 200
    refused = requests.post(flower + "/api/task/async-apply/movie_gen.pipeline_error", json={}, timeout=10)
    assert refused.status_code == 401


def test_up_logs_per_stack(up):
    server, env = up
    assert f"Logs:   {env['MOVIE_GEN_HOME']}/logs/web-{env['MOVIE_GEN_PORT']}" in server.text()


def test_up_checks_every_port_and_names_the_setting(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        env = _env(tmp_path, MOVIE_GEN_PORT=str(free_port()), FLOWER_PORT=str(busy.getsockname()[1]))
        Path(env["MOVIE_GEN_HOME"]).mkdir()
        done = _cli("up", env=env, timeout=30)
    assert done.returncode == 2
    assert f"port {env['FLOWER_PORT']} is in use (set FLOWER_PORT" in done.stderr


def test_generate_shows_live_progress_and_fails_with_the_retry_command(up):
    _, env = up
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "movie_gen", "generate", "A heist on a moving train",
                             "--segments", "6", "--per-set", "2", "--max-retries", "1"],
                            env={**env, "COLUMNS": "160", "TERM": "xterm"}, cwd=env["MOVIE_GEN_HOME"],
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data.decode(errors="replace"))
    assert proc.wait(timeout=60) == 1
    os.close(master)
    screen = "".join(chunks)
    assert "\x1b[" in screen  # redrawn in place on a terminal
    assert "running" in screen or "pending" in screen  # seen before the end
    assert screen.count("success") >= 2 and "failed" in screen
    assert "movie-gen retry " in screen


def test_generate_json_status_and_retry(up):
    _, env = up
    done = _cli("generate", "Two rivals build a bridge", "--segments", "4", "--per-set", "2", "--json",
                env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["success"] is True and result["generation_summary"]["total_segments_generated"] == 4
    for entry in result["sets"]:
        assert (Path(env["OUTPUT_ROOT"]) / entry["file_path"]).exists()

    status = _cli("status", result["job_id"], env=env)
    assert status.returncode == 0 and "success" in status.stdout

    partial = _cli("generate", "A third set that fails", "--segments", "6", "--per-set", "2",
                   "--max-retries", "0", "--json", env=env)
    assert partial.returncode == 1
    job_id = json.loads(partial.stdout)["job_id"]
    assert f"movie-gen retry {job_id}" in partial.stderr
    retried = _cli("retry", job_id, "--max-retries", "1", "--json", env=env)
    assert retried.returncode == 1  # set 3 is configured to fail every time
    assert json.loads(retried.stdout)["retry_info"]["retry_performed"] is True

    listed = _cli("jobs", "--state", "partial", "--json", env=env)
    assert listed.returncode == 0
    assert job_id in [j["job_id"] for j in json.loads(listed.stdout)["jobs"]]
    table = _cli("jobs", env={**env, "COLUMNS": "200"})
    assert table.returncode == 0 and result["job_id"] in table.stdout and "completed" in table.stdout


@pytest.mark.parametrize("args, message", [
    (["generate", "x", "--segments", "0"], "total_segments"),
    (["status", "0" * 32], "HTTP 404"),
])
def test_bad_requests_are_one_line(up, args, message):
    _, env = up
    done = _cli(*args, env=env)
    assert done.returncode == 2 and message in done.stderr
    errors = [line for line in done.stderr.strip().splitlines() if not line.startswith("movie-gen: note:")]
    assert "Traceback" not in done.stderr and len(errors) == 1


def test_generate_says_offline_faults_in_its_own_environment_do_nothing(up):
    _, env = up  # OFFLINE_FAIL_SETS=3 is in this shell too, as when a user exports it for `up`
    done = _cli("generate", "x", "--segments", "0", env=env)
    assert "OFFLINE_FAIL_SETS=3" in done.stderr and "in this shell does nothing here" in done.stderr
    assert "set them where `movie-gen up` runs" in done.stderr


def test_a_server_with_keys_tells_the_cli_user_what_to_set(make_stack, tmp_path):
    stack = make_stack(MOVIE_GEN_API_KEYS="cli-key")
    env = _env(tmp_path, MOVIE_GEN_URL=stack.base_url)
    Path(env["MOVIE_GEN_HOME"]).mkdir()
    refused = _cli("jobs", env=env)
    assert refused.returncode == 2 and "set MOVIE_GEN_API_KEY" in refused.stderr
    allowed = _cli("generate", "Keyed", "--segments", "2", "--per-set", "1", "--json",
                   env={**env, "MOVIE_GEN_API_KEY": "cli-key"})
    assert allowed.returncode == 0, allowed.stderr


def test_unreachable_server_is_one_line(tmp_path):
    env = _env(tmp_path, MOVIE_GEN_URL=f"http://127.0.0.1:{free_port()}")
    Path(env["MOVIE_GEN_HOME"]).mkdir()
    done = _cli("generate", "x", env=env)
    assert done.returncode == 2
    assert done.stderr.startswith("movie-gen: error: cannot reach movie-gen")
    assert "Traceback" not in done.stderr


def _worker_pid(up_pid: int) -> int | None:
    """The main process of the Celery worker that `movie-gen up` started."""
    for pid in _descendants(up_pid):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if b"worker" in cmdline and b"workers" in cmdline and int(stat[1]) == up_pid and stat[0] != "Z":
            return pid
    return None


def test_up_starts_a_killed_worker_again(up):
    server, env = up
    old = wait_until(lambda: _worker_pid(server.proc.pid), 10, "the worker process")
    os.killpg(old, signal.SIGKILL)  # the worker and its pool, as an out-of-memory kill would
    wait_until(lambda: "worker exited (code -9); started again (1 restart(s) in the last 60s)"
               in server.text(), 30, "the restart line")
    new = wait_until(lambda: _worker_pid(server.proc.pid), 10, "the new worker process")
    assert new != old and server.proc.poll() is None
    done = _cli("generate", "After the restart", "--segments", "2", "--per-set", "1", "--json", env=env)
    assert done.returncode == 0, done.stderr
    log = Path(env["MOVIE_GEN_HOME"]) / "logs" / f"web-{env['MOVIE_GEN_PORT']}" / "worker.log"
    assert "movie-gen up: worker exited (code -9); started again" in log.read_text()


def test_restarts_are_bounded_per_window():
    from movie_gen.cli.supervision import RestartBudget

    budget = RestartBudget(limit=2, window_s=60)
    assert [budget.allow(t) for t in (0, 1, 2, 59)] == [True, True, False, False]
    assert budget.allow(60) and budget.allow(61) and not budget.allow(62)
    assert budget.recent == 2


def test_ctrl_c_stops_every_process(up):
    server, _ = up
    pids = _descendants(server.proc.pid)
    assert len(pids) >= 4  # redis, worker (and its pool), gunicorn (and its workers), flower
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(timeout=60) == 0
    wait_until(lambda: not [p for p in pids if _alive(p)], 10, "every child process to exit")
    assert "Stopped." in server.text()


def test_sigkill_of_up_leaves_no_orphans(tmp_path):
    env = _env(tmp_path, MOVIE_GEN_PORT=str(free_port()))
    server = Up({**env, "FLOWER_PORT": str(free_port())})
    pids = _descendants(server.proc.pid)
    server.proc.kill()
    server.proc.wait(timeout=10)
    wait_until(lambda: not [p for p in pids if _alive(p)], 30, "the children of a killed `up` to exit")


def test_demo_writes_a_script_and_stops(tmp_path):
    env = _env(tmp_path)
    Path(env["MOVIE_GEN_HOME"]).mkdir()
    started = time.monotonic()
    done = _cli("demo", env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert time.monotonic() - started < 60
    files = sorted(p.name for p in (Path(env["OUTPUT_ROOT"]) / "generated_movie_script").iterdir())
    assert len(files) == 4 and files[0].endswith("_metadata.json")
    assert "Files: " in done.stdout
    job_id = re.search(r"\(job ([0-9a-f]{32})\)", done.stdout).group(1)
    assert "To read the script: run `movie-gen up`, then open http://127.0.0.1:8000/" in done.stdout
    assert f"movie-gen export {job_id} --format pdf" in done.stdout


@pytest.mark.timeout(150)
def test_up_uses_rabbitmq_when_broker_url_is_set(rabbitmq, tmp_path):
    port = free_port()
    broker = rabbitmq.new()
    env = _env(tmp_path, MOVIE_GEN_PORT=str(port), BROKER_URL=broker)
    server = Up({**env, "FLOWER_PORT": str(free_port())})
    try:
        assert f"Broker: {broker.replace('guest:guest@', 'guest:**@')}" in server.text()
        assert "Redis:  embedded" in server.text()  # the job store and results stay in Redis
        done = _cli("generate", "Rabbit-borne", "--segments", "2", "--per-set", "1", "--json",
                    env={**env, "MOVIE_GEN_URL": f"http://127.0.0.1:{port}"})
        assert done.returncode == 0, done.stderr
        assert rabbitmq.queue_types(broker)["movie_gen"] == "quorum"
    finally:
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(timeout=60) == 0


def test_up_refuses_a_broker_that_does_not_answer(tmp_path):
    env = _env(tmp_path, MOVIE_GEN_PORT=str(free_port()), FLOWER_PORT=str(free_port()),
               BROKER_URL=f"amqp://guest:secret@127.0.0.1:{free_port()}/nowhere")
    Path(env["MOVIE_GEN_HOME"]).mkdir()
    done = _cli("up", env=env, timeout=60)
    assert done.returncode == 2
    assert "no RabbitMQ answers at BROKER_URL (amqp://guest:**@127.0.0.1:" in done.stderr
    assert "secret" not in done.stderr


def test_up_uses_redis_url_when_it_answers(redis_server, tmp_path):
    port = free_port()
    env = {**_env(tmp_path, MOVIE_GEN_PORT=str(port), FLOWER_PORT=str(free_port())),
           "REDIS_URL": redis_server.url(60)}
    server = Up(env)
    try:
        assert f"Redis:  {redis_server.url(60)}" in server.text()
        assert not (Path(env["MOVIE_GEN_HOME"]) / "redis").exists()  # no embedded Redis started
        done = _cli("generate", "Borrowed Redis", "--segments", "2", "--per-set", "1", "--json",
                    env={**env, "MOVIE_GEN_URL": f"http://127.0.0.1:{port}"})
        assert done.returncode == 0, done.stderr
    finally:
        server.proc.send_signal(signal.SIGINT)
        assert server.proc.wait(timeout=60) == 0
