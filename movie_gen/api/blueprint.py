"""The Blueprint every resource uses: invalid input is a 400 (webargs defaults to 422)."""

from __future__ import annotations

import flask_smorest
from webargs.flaskparser import FlaskParser


class _Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with 400 for bad requests."""

    ARGUMENTS_PARSER = _Parser()
