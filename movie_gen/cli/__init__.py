"""The `movie-gen` command: run the whole service locally, submit ideas, follow and retry jobs."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from rich.console import Console

from movie_gen.config.settings import Settings, SettingsError
from movie_gen.store.job_model import FINAL_STATES

from .api_client import ApiClient, CLIError
from .local_stack import LocalStack, free_port
from .parser import build_parser
from .progress import follow, jobs_table, sets_table


def _banner(console: Console, settings: Settings) -> None:
    if settings.llm_provider == "openai":
        console.print(f"[bold]Model:[/] OpenAI-compatible API, model {settings.openai_model}"
                      + (f" at {settings.openai_base_url}" if settings.openai_base_url else ""))
    else:
        console.print("[bold yellow]Model: offline writer[/] (built-in, deterministic demo text; "
                      "set OPENAI_API_KEY to write with a real model)")
        shown = offline_faults(settings)
        if shown:
            console.print(f"[bold yellow]Offline faults on:[/] {shown}")


def offline_faults(settings: Settings) -> str:
    """The OFFLINE_* fault settings that are on, as `NAME=value, ...` (empty when none is)."""
    faults = {"OFFLINE_FAIL_SETS": ",".join(map(str, sorted(settings.offline_fail_sets))),
              "OFFLINE_FAIL_FIRST_RUN_SETS": ",".join(map(str, sorted(settings.offline_fail_first_run_sets))),
              "OFFLINE_FAIL_RATE": settings.offline_fail_rate or "",
              "OFFLINE_LATENCY_S": settings.offline_latency_s or ""}
    return ", ".join(f"{k}={v}" for k, v in faults.items() if v)


def _finish(console: Console, job: dict[str, Any], as_json: bool, output_root: str) -> int:
    result = job.get("result") or {}
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        console.print(sets_table(job))
        if result.get("metadata_file_url"):  # object storage (OUTPUT_URL)
            console.print(f"Files: {result['metadata_file_url'].rsplit('/', 1)[0]}/")
        elif result.get("metadata_file"):
            console.print(f"Files: {os.path.join(output_root, os.path.dirname(result['metadata_file']))}")
    if job["state"] == "completed":
        return 0
    summary = result.get("generation_summary", {})
    missing = sorted(summary.get("failed_set_numbers", []) + summary.get("cancelled_set_numbers", []))
    what = f"sets {missing} were not written" if missing else "the story bible was not written"
    print(f"{job['state']}: {what}. Retry with:\n  movie-gen retry {job['job_id']}", file=sys.stderr)
    return 1


def _follow_and_finish(client: ApiClient, console: Console, job_id: str, as_json: bool,
                       settings: Settings) -> int:
    job = client.job(job_id) if as_json else follow(client, job_id, console)
    while as_json and job["state"] not in FINAL_STATES:
        job = client.job(job_id, wait=30)
    return _finish(console, job, as_json, str(settings.output_root))


def _generate(client: ApiClient, console: Console, args: argparse.Namespace, settings: Settings) -> int:
    if offline_faults(settings):
        print(f"movie-gen: note: {offline_faults(settings)} in this shell does nothing here: the "
              "workers apply the OFFLINE_* settings, so set them where `movie-gen up` runs",
              file=sys.stderr)
    body = {"idea": args.idea, "total_segments": args.segments, "segments_per_set": args.per_set,
            "max_retries": args.max_retries, "output_directory": args.output_directory,
            "save_to_files": not args.no_files}
    job = client.generate(body)
    if not args.json:
        console.print(f"Job {job['job_id']}", soft_wrap=True)
        console.print(f"  {client.base_url}{job['status_url']}", soft_wrap=True)
    return _follow_and_finish(client, console, job["job_id"], args.json, settings)


def _retry(client: ApiClient, console: Console, args: argparse.Namespace, settings: Settings) -> int:
    """Retry the sets that did not succeed; a job whose every set succeeded has nothing to retry."""
    job = client.job(args.job_id)
    if job["state"] == "completed":
        print(json.dumps(job["result"], indent=2) if args.json else
              f"Nothing to retry: every set of job {job['job_id']} succeeded.")
        return 0
    job = client.retry(args.job_id, args.max_retries, "not_before" if args.when_ready else "now")
    scheduled = job["result"]["retry_info"].get("scheduled_at")
    if scheduled:
        print(json.dumps(job["result"], indent=2) if args.json else
              f"Retry of job {job['job_id']} scheduled for {scheduled}; "
              f"follow it with: movie-gen status {job['job_id']}")
        return 0
    if not args.json:
        console.print(f"Retrying job {job['job_id']}")
    return _follow_and_finish(client, console, job["job_id"], args.json, settings)


def _export(client: ApiClient, args: argparse.Namespace) -> int:
    """Write the job's script in `args.format` to a file and print the file's path."""
    path = Path(args.output or ".")
    if path.is_dir():
        path = path / f"{args.job_id}.{args.format}"
    content = client.script(args.job_id, args.format)
    try:
        path.write_bytes(content)
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror}") from None
    print(path.resolve())
    return 0


def _run_stack(settings: Settings, console: Console, web_port: int, flower_port: int | None) -> LocalStack:
    stack = LocalStack(settings, web_port, flower_port, settings.state_dir / "logs" / f"web-{web_port}")
    _banner(console, settings)
    console.print("Starting Redis, worker, web app" + (", Flower" if flower_port else "") + " ...")
    try:
        stack.start(dict(os.environ))
    except BaseException:
        stack.stop()
        raise
    where = "embedded, data in " + str(settings.state_dir / "redis") if stack.embedded_redis else stack.redis_url
    console.print(f"Redis:  {where}\nBroker: {stack.broker}\n"
                  f"API:    {stack.api_url}  (docs: {stack.api_url}/docs)", soft_wrap=True)
    if flower_port:
        console.print(f"Flower: http://127.0.0.1:{flower_port}", soft_wrap=True)
        if not settings.flower_basic_auth:  # generated for this run: shown here and nowhere else
            user, _, password = stack.flower_login.partition(":")
            console.print(f"        login {user} / {password} (generated for this run; set "
                          "FLOWER_BASIC_AUTH=user:password to choose one)", soft_wrap=True)
    console.print(f"Files:  {settings.output_root}\nLogs:   {stack.log_dir}", soft_wrap=True)
    return stack


def _up(settings: Settings, console: Console, no_flower: bool) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = _run_stack(settings, console, settings.web_port, None if no_flower else settings.flower_port)
    console.print("Running. Ctrl-C stops everything.")
    try:
        while not stop.wait(1.0):
            for line in stack.restart_exited_workers():
                console.print(f"[yellow]{line}[/]", soft_wrap=True)
            dead = [c.name for c in stack.children if c.proc.poll() is not None]
            if dead:
                console.print(f"[red]{', '.join(dead)} stopped unexpectedly; shutting down[/]")
                return 1
    finally:
        console.print("Stopping ...")
        stack.stop()
    console.print("Stopped.")
    return 0


def _demo(settings: Settings, console: Console, args: argparse.Namespace) -> int:
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    stack = _run_stack(settings, console, free_port(), free_port())
    try:
        client = ApiClient(stack.api_url, api_key=settings.client_api_key)
        job = client.generate({"idea": args.idea, "total_segments": args.segments,
                               "segments_per_set": args.per_set})
        console.print(f"Writing \"{args.idea}\" (job {job['job_id']})")
        code = _follow_and_finish(client, console, job["job_id"], False, settings)
    finally:
        stack.stop()
    console.print(f"To read the script: run `movie-gen up`, then open http://127.0.0.1:{settings.web_port}/"
                  f"\n  or, with `movie-gen up` running: movie-gen export {job['job_id']} --format pdf",
                  soft_wrap=True)
    return code


def main(argv: list[str] | None = None) -> int:
    """Entry point of `movie-gen` and `python -m movie_gen`."""
    args = build_parser().parse_args(argv)
    console = Console(stderr=False)
    try:
        settings = Settings.from_env()
        client = ApiClient(settings.api_url, api_key=settings.client_api_key)
        if args.command == "up":
            return _up(settings, console, args.no_flower)
        if args.command == "demo":
            return _demo(settings, console, args)
        if args.command == "generate":
            return _generate(client, console, args, settings)
        if args.command == "status":
            job = client.job(args.job_id)
            if args.json:
                print(json.dumps(job, indent=2))
                return 0
            return _follow_and_finish(client, console, args.job_id, False, settings)
        if args.command == "jobs":
            page = client.jobs(args.state, args.limit)
            if args.json:
                print(json.dumps(page, indent=2))
            else:
                console.print(jobs_table(page["jobs"]))
            return 0
        if args.command == "export":
            return _export(client, args)
        if args.command == "retry":
            return _retry(client, console, args, settings)
    except (CLIError, SettingsError) as exc:
        print(f"movie-gen: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        print("movie-gen: interrupted", file=sys.stderr)
        return 130
    return 2
