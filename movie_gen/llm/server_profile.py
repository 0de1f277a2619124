"""What one model server accepts (output mode, token parameter, system role, schema keywords), learned once.

The profile starts from the settings; in `auto` a refused request shape moves one feature to its
next option. What was learned is kept per model and base URL in this process only (each Celery
worker process learns it again, at the cost of one refused request).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from dataclasses import dataclass

from movie_gen.config.settings import Settings

from .output_modes import MODES, next_mode

log = logging.getLogger(__name__)

# Features a server may refuse, in the words used in logs and errors.
OUTPUT_MODE = "response_format"
TOKEN_PARAM = "token limit parameter"
SYSTEM_ROLE = "system role"
SCHEMA_KEYWORDS = "schema keywords"


@dataclass(frozen=True)
class ServerProfile:
    """The request shape to send to one server."""

    mode: str
    token_param: str  # both, max_completion_tokens or max_tokens
    system_role: bool
    schema_bounds: bool  # length bounds and uniqueItems inside a json_schema


def initial_profile(settings: Settings) -> ServerProfile:
    """The request shape the settings ask for before anything is learned."""
    mode = MODES[0] if settings.llm_structured_output == "auto" else settings.llm_structured_output
    param = "both" if settings.openai_token_param == "auto" else settings.openai_token_param
    return ServerProfile(mode=mode, token_param=param, system_role=settings.openai_system_role != "user",
                         schema_bounds=True)


def adapted(profile: ServerProfile, feature: str, settings: Settings,
            detail: str = "") -> ServerProfile | None:
    """The profile with `feature` moved to its next option, or None when no fallback is allowed."""
    if feature == OUTPUT_MODE and settings.llm_structured_output == "auto":
        mode = next_mode(profile.mode)
        return dataclasses.replace(profile, mode=mode) if mode else None
    if feature == TOKEN_PARAM and settings.openai_token_param == "auto" and profile.token_param == "both":
        # the refused name comes first ("Unsupported parameter: 'max_tokens' ... use 'max_completion_tokens'")
        refused = re.search(r"max_completion_tokens|max_tokens", detail)
        keep = "max_tokens" if refused and refused.group() == "max_completion_tokens" else "max_completion_tokens"
        return dataclasses.replace(profile, token_param=keep)
    if feature == SYSTEM_ROLE and settings.openai_system_role == "auto" and profile.system_role:
        return dataclasses.replace(profile, system_role=False)
    if feature == SCHEMA_KEYWORDS and profile.schema_bounds and profile.mode == "json_schema":
        return dataclasses.replace(profile, schema_bounds=False)
    return None


class ProfileRegistry:
    """Learned profiles by (base URL, model), shared by the threads of one process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._profiles: dict[tuple[str, str], ServerProfile] = {}

    def get(self, key: tuple[str, str], settings: Settings) -> ServerProfile:
        with self._lock:
            return self._profiles.get(key) or initial_profile(settings)

    def remember(self, key: tuple[str, str], profile: ServerProfile, reasons: list[str]) -> None:
        """Keep `profile` for `key`; warn once per change (the first thread to learn it)."""
        with self._lock:
            if self._profiles.get(key) == profile:
                return
            self._profiles[key] = profile
        log.warning("model server %s (model %s) refused %s; using from now on: output mode %s, "
                    "token parameter %s, system role %s, schema length bounds %s",
                    key[0], key[1], " and ".join(reasons), profile.mode, profile.token_param,
                    "on" if profile.system_role else "merged into the user message",
                    "on" if profile.schema_bounds else "off")

    def clear(self) -> None:
        with self._lock:
            self._profiles.clear()


PROFILES = ProfileRegistry()
