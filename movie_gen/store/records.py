"""The vocabulary of job records: states, unit statuses, timestamps, and a unit's Redis fields."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

QUEUED, OUTLINING, GENERATING, CANCELLING = "queued", "outlining", "generating", "cancelling"
COMPLETED, PARTIAL, FAILED, CANCELLED = "completed", "partial", "failed", "cancelled"
FINAL_STATES = (COMPLETED, PARTIAL, FAILED, CANCELLED)
# `cancelling`: a cancel was asked while units were running; the job is `cancelled` once they stop.
STATES = (QUEUED, OUTLINING, GENERATING, CANCELLING, *FINAL_STATES)
SET_PENDING, SET_RUNNING, SET_RETRYING = "pending", "running", "retrying"
SET_SUCCESS, SET_FAILED, SET_CANCELLED = "success", "failed", "cancelled"
BIBLE_UNIT = "bible"


def now_iso(at: float | None = None) -> str:
    """UTC timestamp with milliseconds, e.g. 2026-11-28T21:03:04.123Z (now, or epoch `at`)."""
    moment = datetime.now(timezone.utc) if at is None else datetime.fromtimestamp(at, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(iso: str | None) -> float:
    """Seconds since the epoch of an ISO timestamp (now, if it cannot be read)."""
    try:
        return datetime.fromisoformat((iso or "").replace("Z", "+00:00")).timestamp()
    except ValueError:
        return datetime.now(timezone.utc).timestamp()


def new_job_id() -> str:
    """A random job id that is safe in URLs and file names."""
    return uuid.uuid4().hex


def encode_unit(unit: str, record: dict[str, Any]) -> dict[str, str]:
    """A unit's record as the fields of the units hash: status, task id, record."""
    body = {k: v for k, v in record.items() if k not in ("status", "task_id")}
    fields = {f"{unit}:status": record.get("status", SET_PENDING), f"{unit}:record": json.dumps(body)}
    if record.get("task_id"):
        fields[f"{unit}:task_id"] = record["task_id"]
    return fields


def decode_unit(fields: dict[str, str | None], unit: str) -> dict[str, Any]:
    """A unit's record from the fields of the units hash (the inverse of `encode_unit`)."""
    record = json.loads(fields.get(f"{unit}:record") or "{}")
    record["status"] = fields.get(f"{unit}:status") or SET_PENDING
    if fields.get(f"{unit}:task_id"):
        record["task_id"] = fields[f"{unit}:task_id"]
    record.setdefault("attempts", [])
    return record


_CODES = {SET_PENDING: "p", SET_RUNNING: "r", SET_RETRYING: "y", SET_SUCCESS: "s", SET_FAILED: "f",
          SET_CANCELLED: "c"}
_STATUSES = {code: status for status, code in _CODES.items()}


def status_line(units: list[dict[str, Any]]) -> str:
    """Three characters per set, in set order: status code and attempt count (00-99)."""
    sets = sorted((u for u in units if "set_number" in u), key=lambda u: u["set_number"])
    return "".join(f"{_CODES.get(u.get('status'), 'p')}{min(99, len(u.get('attempts', []))):02d}"
                   for u in sets)


def read_status_line(line: str, total: int) -> tuple[dict[int, str], dict[int, int]]:
    """Every set's status and attempt count from the status line."""
    statuses, counts = {}, {}
    for n in range(1, total + 1):
        chunk = line[3 * (n - 1):3 * n]
        statuses[n] = _STATUSES.get(chunk[:1], SET_PENDING)
        counts[n] = int(chunk[1:] or 0) if chunk[1:].isdigit() else 0
    return statuses, counts
