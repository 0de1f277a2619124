"""The Blueprint every resource uses: invalid input is a 400, and JSON bodies are parsed safely."""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request

from .json_body import load_json_object, read_body


class _Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: flask.Request) -> Any:
        if not is_json_request(req) or not read_body(req):
            return core.missing
        return load_json_object(req)


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint with 400 for bad requests and bounded JSON parsing."""

    ARGUMENTS_PARSER = _Parser()
