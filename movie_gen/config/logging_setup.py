"""Log lines with job id and set number; JSON lines when LOG_FORMAT=json."""

from __future__ import annotations

import json
import logging

CONTEXT_FIELDS = ("job_id", "set_number", "attempt", "delay_s", "outcome", "request_id")


class ContextFormatter(logging.Formatter):
    """Plain text: `time level logger [job=… set=…] message`."""

    def format(self, record: logging.LogRecord) -> str:
        base = super().format(record)
        context = " ".join(f"{k}={getattr(record, k)}" for k in CONTEXT_FIELDS
                           if getattr(record, k, None) is not None)
        return f"{base} [{context}]" if context else base


class JsonFormatter(logging.Formatter):
    """One JSON object per line with the context fields as keys."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": self.formatTime(record), "level": record.levelname,
                "logger": record.name, "message": record.getMessage()}
        for key in CONTEXT_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def make_formatter(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure_logging(log_format: str, level: str, logger: logging.Logger | None = None) -> None:
    """Give every handler of `logger` (the root logger by default) our formatter."""
    logger = logger or logging.getLogger()
    if not logger.handlers:
        logger.addHandler(logging.StreamHandler())
    for handler in logger.handlers:
        handler.setFormatter(make_formatter(log_format))
    logger.setLevel(level)
