"""The previous attempt's validation error of a unit, to quote in the next prompt."""

from __future__ import annotations

from typing import Any


def validation_feedback(record: dict[str, Any] | None) -> str | None:
    """The error of the unit's last finished attempt when it was invalid output (else None)."""
    for entry in reversed((record or {}).get("attempts", [])):
        if entry.get("outcome") == "error":
            return entry.get("error") if entry.get("error_class") == "invalid_output" else None
    return None
