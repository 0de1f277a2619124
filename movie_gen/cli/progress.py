"""Live per-set progress of a job in the terminal (rich), and the final table of sets and files."""

from __future__ import annotations

import time
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from movie_gen.store.job_model import FINAL_STATES

from .api_client import ApiClient

STYLE = {"success": "green", "completed": "green", "failed": "red", "partial": "yellow",
         "running": "yellow", "retrying": "magenta", "pending": "dim", "cancelled": "dim"}


def sets_table(job: dict[str, Any], output_root: str | None = None) -> Table:
    """One row per set: state, segments, attempts, file or error."""
    result = job.get("result") or {}
    title = result.get("story_title") or "(writing the story bible)"
    table = Table(title=f"{title} — job {job['job_id']} — {job['state']}", title_justify="left")
    for column in ("set", "segments", "state", "attempts"):
        table.add_column(column, no_wrap=True)
    table.add_column("file / error", overflow="fold")
    for entry in result.get("sets", []):
        status = entry["status"]
        detail = entry.get("file_path") or entry.get("error") or ""
        table.add_row(str(entry["set_number"]), f"{entry['first_segment']}–{entry['last_segment']}",
                      Text(status, style=STYLE.get(status, "")), str(entry.get("attempts", 0)),
                      detail)
    return table


def summary_line(job: dict[str, Any]) -> Text:
    progress = job["progress"]
    return Text(f"{progress['sets_succeeded']}/{progress['sets_total']} sets done, "
                f"{progress['sets_failed']} failed, {progress['sets_pending']} to go")


def follow(client: ApiClient, job_id: str, console: Console, timeout_s: float = 3600) -> dict[str, Any]:
    """Redraw the table as the job moves, until it reaches a final state; returns the job."""
    deadline = time.monotonic() + timeout_s
    job = client.job(job_id)
    # transient: the live view is erased at the end, and the caller prints the final table once
    with Live(Group(sets_table(job), summary_line(job)), console=console, refresh_per_second=8,
              transient=True) as live:
        while job["state"] not in FINAL_STATES and time.monotonic() < deadline:
            job = client.job(job_id, wait=0.5)
            live.update(Group(sets_table(job), summary_line(job)))
    return job


def _minute(timestamp: str | None) -> str:
    """`2026-11-29T08:55:48.525Z` as `2026-11-29 08:55`: a date that fits a narrow terminal."""
    if timestamp and len(timestamp) >= 16 and timestamp[10] == "T":
        return f"{timestamp[:10]} {timestamp[11:16]}"
    return timestamp or ""


def jobs_table(jobs: list[dict[str, Any]]) -> Table:
    """One line per job: id, state, title, sets, created; only the title gives way on a narrow terminal."""
    table = Table(title="Jobs, newest first", title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, collapse_padding=True)
    table.add_column("job id", no_wrap=True, min_width=32)
    table.add_column("state", no_wrap=True)
    table.add_column("title")  # the one column that shrinks; its text is cut short, never wrapped
    table.add_column("sets", no_wrap=True, justify="right")
    table.add_column("created (UTC)", no_wrap=True)
    for job in jobs:
        title = Text(job.get("title") or "", no_wrap=True, overflow="ellipsis")
        table.add_row(job["job_id"], Text(job["state"], style=STYLE.get(job["state"], "")), title,
                      str(job.get("sets_total", "")), _minute(job.get("created_at")))
    return table
