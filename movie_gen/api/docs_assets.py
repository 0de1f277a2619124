"""Serve the Swagger UI files of `/docs` from the `swagger-ui-bundle` package (no CDN needed)."""

from __future__ import annotations

from flask import Flask, send_from_directory

ASSETS_URL = "/docs/assets/"


def install_docs_assets(app: Flask) -> None:
    import swagger_ui_bundle

    directory = swagger_ui_bundle.swagger_ui_path

    def docs_assets(filename: str):
        return send_from_directory(directory, filename)

    app.add_url_rule(ASSETS_URL + "<path:filename>", "docs_assets", docs_assets)
