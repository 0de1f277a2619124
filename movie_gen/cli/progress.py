"""Live per-set progress of a job in the terminal (rich), and the final table of sets and files."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from ..job_store import FINAL_STATES
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
    with Live(Group(sets_table(job), summary_line(job)), console=console, refresh_per_second=8,
              transient=not console.is_terminal) as live:
        while job["state"] not in FINAL_STATES and time.monotonic() < deadline:
            job = client.job(job_id, wait=0.5)
            live.update(Group(sets_table(job), summary_line(job)))
    return job


def jobs_table(jobs: list[dict[str, Any]]) -> Table:
    """One row per job: id, state, title, sets, created."""
    table = Table(title="Jobs, newest first", title_justify="left")
    table.add_column("job id", no_wrap=True, min_width=32)
    for column in ("state", "title", "sets", "created"):
        table.add_column(column, overflow="fold")
    for job in jobs:
        table.add_row(job["job_id"], Text(job["state"], style=STYLE.get(job["state"], "")),
                      job.get("title") or "", str(job.get("sets_total", "")), job.get("created_at") or "")
    return table
