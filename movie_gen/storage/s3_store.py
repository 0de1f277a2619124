"""Scripts in an S3-compatible bucket (AWS S3, MinIO, Ceph, Cloudflare R2, GCS's S3 API), by boto3.

boto3 rather than s3fs: s3fs runs its calls on an asyncio loop in a thread of its own
(aiobotocore), which is not fork-safe (Celery's prefork pool forks after import: celery#7607,
s3fs#914 hang) and clashes with gevent's patched threads in the web process (fsspec#1701). boto3
is plain blocking HTTP on urllib3, so a gevent-patched socket makes it cooperative; one client per
process, made on first use after the fork. Only single-request calls (PUT, GET) are used: no
transfer manager and its thread pool.

The standard AWS variables configure it: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_DEFAULT_REGION, and AWS_ENDPOINT_URL for a server other than AWS (addressed path-style then).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from contextlib import contextmanager
from typing import Any, Iterator
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, HTTPClientError

from movie_gen.errors import StorageUnavailable
from movie_gen.storage.files import CHUNK, check_key, check_relative_dir, to_bytes

log = logging.getLogger(__name__)
# Errors that may pass: the server is unreachable, overloaded or asks to slow down.
TRANSIENT_CODES = {"SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "ServiceUnavailable",
                   "InternalError", "ConditionalRequestConflict", "OperationAborted"}
MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


# botocore's standard retries, a few tries within one call: a set's reply is paid before its PUT,
# so a blip on the way must not throw that reply away (a task retry would call the model again).
# When the tries run out, StorageUnavailable hands the unit to the task's retry policy. With an
# endpoint URL (MinIO, moto, Ceph) botocore addresses buckets path-style by itself.
_CONFIG = Config(connect_timeout=5, read_timeout=30,
                 retries={"mode": "standard", "total_max_attempts": 3})


class S3Store:
    """The keys of a job's files under `s3://bucket/prefix/`."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.bucket, self.prefix = parts.netloc, parts.path.strip("/")
        self._client: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        """This process's S3 client (a forked child makes its own: sockets are never shared)."""
        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    self._client = boto3.session.Session().client("s3", config=_CONFIG)
                    self._pid = os.getpid()
        return self._client

    def _key(self, key: str) -> str:
        key = check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def directory(self, relative: str) -> str:
        return check_relative_dir(relative)

    def write_json(self, key: str, data: Any) -> None:
        with _errors():
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=to_bytes(data),
                                   ContentType="application/json")

    def create_json(self, key: str, data: Any) -> bool:
        try:
            with _errors(passing=("PreconditionFailed",)):
                self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=to_bytes(data),
                                       ContentType="application/json", IfNoneMatch="*")
        except ClientError:
            return False  # 412: an object is there already
        return True

    def _get(self, key: str, whole: bool) -> Any | None:
        """The object's bytes (`whole`) or its body to stream; None when it is missing, refused
        for good (no access, no bucket) or not a key of ours."""
        try:
            with _errors(passing=tuple(MISSING_CODES)):
                body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
                if not whole:
                    return body
                with body:
                    return body.read()  # a connection cut while reading is StorageUnavailable too
        except (ClientError, OSError, ValueError):
            return None

    def read_json(self, key: str) -> Any | None:
        data = self._get(key, whole=True)
        try:
            return None if data is None else json.loads(data)
        except ValueError:
            return None

    def stream(self, key: str) -> Iterator[bytes] | None:
        body = self._get(key, whole=False)
        if body is None:
            return None

        def chunks() -> Iterator[bytes]:
            with body:
                yield from body.iter_chunks(CHUNK)
        return chunks()

    def url(self, key: str) -> str | None:
        return f"s3://{self.bucket}/{self._key(key)}"


@contextmanager
def _errors(passing: tuple[str, ...] = ()) -> Iterator[None]:
    """botocore's errors as ours: StorageUnavailable (to retry), OSError (fails for good); the
    ClientErrors whose code is in `passing` are left to the caller."""
    try:
        yield
    except (ConnectionError, HTTPClientError) as exc:  # refused, reset, timed out
        log.warning("output storage unreachable: %s", exc)  # the endpoint is named here, not to clients
        raise StorageUnavailable(f"the output storage did not answer ({type(exc).__name__})") from None
    except ClientError as exc:
        error, meta = exc.response.get("Error", {}), exc.response.get("ResponseMetadata", {})
        code, status = str(error.get("Code", "")), int(meta.get("HTTPStatusCode") or 0)
        if code in passing:
            raise
        if code in TRANSIENT_CODES or status >= 500 or status == 429:
            raise StorageUnavailable(f"the output storage answered {code or status}; "
                                     "a later try may succeed") from None
        raise OSError(f"the output storage refused it: {code} ({error.get('Message', '')})") from None
    except BotoCoreError as exc:  # no credentials, a bad configuration
        raise OSError(f"the output storage cannot be used: {exc}") from None
