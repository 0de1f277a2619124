"""gunicorn's own refusals (a request line or headers too long, a malformed request) as JSON.

gunicorn answers requests it cannot parse itself, before the app sees them, with an HTML page
written by `gunicorn.util.write_error`; it has no setting for another body (benoitc/gunicorn#993).
`install()` replaces that one function so these answers carry the API's error body too.
"""

from __future__ import annotations

import json

from gunicorn import util


def write_json_error(sock, status_int: int, reason: str, mesg: str) -> None:
    """What gunicorn's `write_error` sends, with the API's JSON error body instead of HTML."""
    body = json.dumps({"code": status_int, "status": reason, "message": mesg or reason},
                      separators=(",", ":")).encode()
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    util.write_nonblock(sock, head.encode("latin-1") + body)


def install() -> None:
    """Make gunicorn answer its own refusals with `write_json_error` (in this process and its forks)."""
    util.write_error = write_json_error
