"""A small HTTP client of the movie-gen API for the CLI, with errors as one clear line."""

from __future__ import annotations

from typing import Any

import requests

ASYNC = {"Prefer": "respond-async"}  # the CLI follows the job itself, even on a SYNC_WAIT_S server


class CLIError(Exception):
    """An error to print as one line (no traceback) before exiting non-zero."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class ApiClient:
    """POST a job, read a job, retry a job, download its script."""

    def __init__(self, base_url: str, timeout_s: float = 30, api_key: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """The answer to a request; an error answer or no answer raises CLIError."""
        url = self.base_url + path
        timeout = kwargs.pop("timeout", self.timeout_s)
        headers = {**self.headers, **kwargs.pop("headers", {})}
        try:
            response = requests.request(method, url, timeout=timeout, headers=headers, **kwargs)
        except requests.ConnectionError:
            raise CLIError(f"cannot reach movie-gen at {self.base_url} "
                           "(start it with `movie-gen up`, or set MOVIE_GEN_URL)") from None
        except requests.Timeout:
            raise CLIError(f"movie-gen at {self.base_url} did not answer in time") from None
        if response.status_code == 401:
            raise CLIError("HTTP 401: this server needs an API key: set MOVIE_GEN_API_KEY to one of "
                           "its MOVIE_GEN_API_KEYS")
        if response.status_code >= 400:
            body = self._json(response)
            detail = body.get("message", "")
            errors = body.get("errors")
            if errors:
                detail = "; ".join(f"{k}: {v[0] if isinstance(v, list) else v}" for k, v in errors.items())
            raise CLIError(f"HTTP {response.status_code}: {detail}")
        return response

    @staticmethod
    def _json(response: requests.Response) -> dict[str, Any]:
        try:
            return response.json()
        except ValueError:
            raise CLIError(f"{response.url} answered HTTP {response.status_code} without JSON") from None

    def _call(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        response = self._send(method, path, **kwargs)
        return response.status_code, self._json(response)

    def generate(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/generate-movie-auto", json=body, headers=ASYNC)[1]

    def retry(self, job_id: str, max_retries: int, when: str = "now") -> dict[str, Any]:
        return self._call("POST", "/retry-failed-story-sets", headers=ASYNC,
                          json={"job_id": job_id, "max_retries": max_retries, "when": when})[1]

    def jobs(self, state: str | None, limit: int, cursor: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in {"state": state, "limit": limit, "cursor": cursor}.items() if v}
        return self._call("GET", "/jobs", params=params)[1]

    def job(self, job_id: str, wait: float = 0) -> dict[str, Any]:
        params = {"wait": wait} if wait else {}
        return self._call("GET", f"/jobs/{job_id}", params=params, timeout=wait + self.timeout_s)[1]

    def script(self, job_id: str, fmt: str) -> bytes:
        """The job's script in format `fmt` (json, fountain, html, pdf or csv), as bytes."""
        return self._send("GET", f"/jobs/{job_id}/script", params={"format": fmt}).content

    def healthy(self) -> bool:
        try:
            return requests.get(self.base_url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False
