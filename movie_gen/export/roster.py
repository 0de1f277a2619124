"""Look-ups into an assembled script's story bible: names of the cast, descriptions of places."""

from __future__ import annotations

from typing import Any


def character_names(script: dict[str, Any]) -> dict[str, str]:
    """Roster id → the character's name."""
    return {c["id"]: c.get("name") or c["id"] for c in script.get("characters", [])}


def character_looks(script: dict[str, Any]) -> dict[str, str]:
    """Roster id → the character's visual description."""
    return {c["id"]: c.get("visual_description", "") for c in script.get("characters", [])}


def location_descriptions(script: dict[str, Any]) -> dict[str, str]:
    """Location name (lowercase) → its description."""
    return {loc["name"].strip().lower(): loc.get("description", "") for loc in script.get("locations", [])}
