"""The download formats of a script besides JSON: the content type and the renderer of each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from movie_gen.storage.files import file_stem

from .fountain import to_fountain
from .screenplay import to_html, to_pdf
from .shot_list import to_csv


@dataclass(frozen=True)
class ExportFormat:
    """How one format is rendered from an assembled script, and how it is served."""

    content_type: str
    render: Callable[[dict[str, Any]], bytes]
    disposition: str = "attachment"


def _utf8(render: Callable[[dict[str, Any]], str]) -> Callable[[dict[str, Any]], bytes]:
    return lambda script: render(script).encode("utf-8")


EXPORTS: dict[str, ExportFormat] = {
    "fountain": ExportFormat("text/plain; charset=utf-8", _utf8(to_fountain)),
    "html": ExportFormat("text/html; charset=utf-8", _utf8(lambda s: to_html(to_fountain(s))), "inline"),
    "pdf": ExportFormat("application/pdf", lambda script: to_pdf(to_fountain(script)), "inline"),
    "csv": ExportFormat("text/csv; charset=utf-8", _utf8(to_csv)),
}
FORMATS = ("json", *EXPORTS)  # the format name is also the file extension


def file_name(script: dict[str, Any], fmt: str) -> str:
    """`The_Title.pdf`: a safe file name for a script in format `fmt`."""
    return f"{file_stem(script.get('story_title') or script['job_id'])}.{fmt}"
