"""The CLI's first hour: `up` after Ctrl-C, retry with nothing to retry, tables in an 80-column terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import socket
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pyte
import pytest

from movie_gen.cli.local_stack import LocalStack, port_is_free
from movie_gen.config.settings import Settings

from .servers import ROOT, wait_until

TIME_WAIT = "06"  # the state column of /proc/net/tcp
DATE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d")


def _tcp_states(port: int) -> set[str]:
    """The TCP states of the sockets whose local port is `port` (IPv4, from /proc/net/tcp)."""
    states = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port:
            states.add(fields[3])
    return states


def test_a_port_left_in_time_wait_is_free_and_a_listening_one_is_not(tmp_path):
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = listener.accept()
        assert not port_is_free(port)  # a server listens there
        served.close()  # the server side closes first, as a stopped web app does: it keeps TIME-WAIT
        client.close()
    wait_until(lambda: _tcp_states(port) == {TIME_WAIT}, 10, f"only TIME-WAIT left on port {port}")
    with socket.socket() as plain, pytest.raises(OSError):
        plain.bind(("127.0.0.1", port))  # what the check did before: "port ... is in use"
    assert port_is_free(port)
    stack = LocalStack(Settings.from_env({}), port, None, tmp_path)
    stack.check_ports()  # `movie-gen up` right after Ctrl-C starts


@pytest.fixture(scope="module")
def cli_env(make_stack, tmp_path_factory):
    """A running service, and the environment of a shell whose CLI talks to it."""
    stack = make_stack()
    home = tmp_path_factory.mktemp("cli-home")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OFFLINE_", "OPENAI_", "RETRY_", "LLM_", "MOVIE_GEN", "REDIS_"))}
    return stack, {**env, "PYTHONPATH": str(ROOT), "MOVIE_GEN_URL": stack.base_url,
                   "MOVIE_GEN_HOME": str(home), "OUTPUT_ROOT": str(stack.output_root)}


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "movie_gen", *args], env=env, cwd=env["MOVIE_GEN_HOME"],
                          capture_output=True, text=True, timeout=90)


def _in_terminal(env: dict[str, str], *args: str, columns: int = 80, rows: int = 200) -> tuple[int, list[str]]:
    """Run the CLI in a pseudo-terminal of `columns`; its exit status and the screen it leaves."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "movie_gen", *args], cwd=env["MOVIE_GEN_HOME"],
                            env={**env, "TERM": "xterm", "COLUMNS": str(columns), "LINES": str(rows)},
                            stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    screen = pyte.Screen(columns, rows)
    stream = pyte.ByteStream(screen)
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        stream.feed(data)
    os.close(master)
    return proc.wait(timeout=60), [line.rstrip() for line in screen.display if line.strip()]


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_retry_of_a_job_whose_sets_all_succeeded_has_nothing_to_retry(cli_env, as_json):
    stack, env = cli_env
    job_id = stack.generate(idea="Nothing left to redo", total_segments=2, segments_per_set=1)
    assert stack.wait_job(job_id)["state"] == "completed"
    done = _cli(env, "retry", job_id, *(["--json"] if as_json else []))
    assert done.returncode == 0, done.stderr
    if as_json:
        assert json.loads(done.stdout)["success"] is True
    else:
        assert done.stdout.strip() == f"Nothing to retry: every set of job {job_id} succeeded."
    assert "HTTP" not in done.stderr


def test_generate_in_a_terminal_leaves_one_final_table(cli_env):
    _, env = cli_env
    code, screen = _in_terminal(env, "generate", "A lighthouse that walks", "--segments", "4",
                                "--per-set", "1")
    assert code == 0, "\n".join(screen)
    headers = [line for line in screen if "attempts" in line and "state" in line]
    assert len(headers) == 1, "\n".join(screen)  # the live view gives way to the final table
    assert sum(" success " in line for line in screen) == 4


def test_jobs_at_80_columns_keeps_each_job_on_one_line(cli_env):
    stack, env = cli_env
    job_id = stack.generate(idea="A very long idea about a cartographer who maps the dreams of a "
                                 "sleeping city, one street at a time", total_segments=1,
                            segments_per_set=1)
    stack.wait_job(job_id)
    code, screen = _in_terminal(env, "jobs", "--limit", "5")
    assert code == 0, "\n".join(screen)
    rows = [line for line in screen if re.match(r"^[0-9a-f]{32} ", line)]
    assert rows and rows[0].startswith(job_id), "\n".join(screen)
    for row in rows:
        assert DATE.search(row) and row.endswith(DATE.findall(row)[-1]), "\n".join(screen)
    assert len(screen) == len(rows) + 3  # title, header, rule: nothing wrapped onto another line
