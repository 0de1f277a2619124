"""HTML and PDF screenplays rendered from Fountain text by screenplain."""

from __future__ import annotations

import html
import io

from screenplain.export.html import convert
from screenplain.export.pdf import to_pdf as screenplain_pdf
from screenplain.parsers.fountain import parse
from screenplain.types import Screenplay


def parse_fountain(text: str) -> Screenplay:
    """screenplain's reading of Fountain text: a title page and a list of paragraphs."""
    return parse(io.StringIO(text))


def _attribute(screenplay: Screenplay, key: str) -> str:
    return " ".join(str(line) for line in screenplay.get_rich_attribute(key))


def to_html(text: str) -> str:
    """A complete HTML page of the screenplay, its title in the head and on top of the page."""
    screenplay = parse_fountain(text)
    out = io.StringIO()
    convert(screenplay, out)
    title = html.escape(_attribute(screenplay, "Title") or "Screenplay")
    credit = html.escape(f'{_attribute(screenplay, "Credit")} {_attribute(screenplay, "Author")}'.strip())
    heading = f'<h1 class="title">{title}</h1><p class="centered">{credit}</p>\n'
    page = out.getvalue().replace("<title>Screenplay</title>", f"<title>{title}</title>", 1)
    return page.replace('class="screenplay">\n', 'class="screenplay">\n' + heading, 1)


def to_pdf(text: str) -> bytes:
    """The screenplay as a PDF in standard screenplay layout (US Letter, Courier Prime 12 pt)."""
    out = io.BytesIO()
    screenplain_pdf(parse_fountain(text), out)
    return out.getvalue()
