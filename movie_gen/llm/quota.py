"""A spent quota or unpaid bill (429 insufficient_quota, 402, billing errors): QuotaExhausted, not a retry."""

from __future__ import annotations

import re
from typing import Any

from ..errors import QuotaExhausted
from .refusals import error_text

QUOTA_CODES = {"insufficient_quota", "billing_hard_limit_reached", "billing_not_active",
               "insufficient_balance", "billing_error", "payment_required", "quota_exceeded"}
_QUOTA_TEXT = re.compile(r"exceeded your current quota|check your plan and billing|insufficient (?:balance|"
                         r"credits?|funds)|credit balance is too low|billing details", re.I)
MIN_HINT_S = 60.0  # a shorter hint is a generic rate-limit header (llmock sends 1 s), not a reset time
_TRY_AGAIN = re.compile(r"try again in\s+(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m(?!s))?\s*"
                        r"(?:(\d+(?:\.\d+)?)s)?", re.I)


def _error_fields(body: Any) -> tuple[str, str]:
    error = body.get("error", body) if isinstance(body, dict) else {}
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("code") or ""), str(error.get("type") or "")


def hinted_wait_s(text: str) -> float | None:
    """The wait in a message such as "Please try again in 1h2m3s", in seconds."""
    match = _TRY_AGAIN.search(text)
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def quota_exhausted(exc: Any, default_wait_s: float,
                    retry_after_s: float | None = None) -> QuotaExhausted | None:
    """QuotaExhausted for a quota or billing error of the server (None for any other error)."""
    if exc.status_code not in (402, 403, 429):
        return None
    code, kind = _error_fields(getattr(exc, "body", None))
    text = error_text(exc)
    if not ({code, kind} & QUOTA_CODES or exc.status_code == 402 or _QUOTA_TEXT.search(text)):
        return None
    hints = [h for h in (hinted_wait_s(text), retry_after_s) if h is not None and h >= MIN_HINT_S]
    wait = hints[0] if hints else default_wait_s
    return QuotaExhausted(f"model server quota exhausted (HTTP {exc.status_code} {code or kind}): "
                           f"{getattr(exc, 'message', exc)}; no model call is made before the quota "
                           f"resets (retry after {wait:.0f} s)", retry_after_s=wait)
