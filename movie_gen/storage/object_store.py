"""Where a job's files live: a directory (OUTPUT_ROOT), or an S3-compatible bucket (OUTPUT_URL).

Everything that writes or reads a job's files goes through an `OutputStore`: the set files, the
metadata file, the pointer from a job id to it, the rebuild after Redis lost a job, the exports
and the downloads. A file is named by its key, the path relative to the root or prefix
(`generated_movie_script/Title_set_01.json`), which is also the `file_path` that jobs report.
Every write is whole: a reader sees the old file or the new one, never half of one.

Errors: a missing or unreadable file reads as None; a write that fails for good raises OSError
(reported on the job as a storage error); storage that does not answer raises
`StorageUnavailable`, a transient error, so that the unit is retried by its task's policy.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

from movie_gen.config.settings import Settings
from movie_gen.storage.files import (
    CHUNK,
    UnsafePath,
    check_key,
    create_json_exclusive,
    resolve_under,
    write_json_atomic,
)


class OutputStore(Protocol):
    """The operations on a job's files, the same for a directory and for a bucket."""

    def directory(self, relative: str) -> str:
        """The key of a client's `output_directory`, confined under the root (UnsafePath if not)."""

    def write_json(self, key: str, data: Any) -> None:
        """Write (or replace) the whole file."""

    def create_json(self, key: str, data: Any) -> bool:
        """Write the file only if none is there; False when one is."""

    def read_json(self, key: str) -> Any | None:
        """The file's JSON, or None when it is missing, unreadable or outside the root."""

    def stream(self, key: str) -> Iterator[bytes] | None:
        """The file's bytes in chunks, or None when it is missing."""

    def url(self, key: str) -> str | None:
        """The file's object URL (`s3://bucket/prefix/key`); None for local files."""


class LocalStore:
    """Files under a directory: a temp file renamed into place, symlinks checked at every use."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        real = Path(os.path.realpath(self.root))
        path = Path(os.path.realpath(real / check_key(key)))
        if real not in path.parents:
            raise UnsafePath("resolves outside OUTPUT_ROOT (through a symbolic link)")
        return path

    def directory(self, relative: str) -> str:
        target = resolve_under(self.root, relative)
        return target.relative_to(os.path.realpath(self.root)).as_posix()

    def write_json(self, key: str, data: Any) -> None:
        write_json_atomic(self._path(key), data)

    def create_json(self, key: str, data: Any) -> bool:
        return create_json_exclusive(self._path(key), data)

    def read_json(self, key: str) -> Any | None:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):  # UnsafePath is a ValueError
            return None

    def stream(self, key: str) -> Iterator[bytes] | None:
        try:
            handle = open(self._path(key), "rb")
        except (OSError, UnsafePath):
            return None

        def chunks() -> Iterator[bytes]:
            with handle:
                while block := handle.read(CHUNK):
                    yield block
        return chunks()

    def url(self, key: str) -> str | None:
        return None


def open_store(settings: Settings) -> OutputStore:
    """The bucket that OUTPUT_URL names (settings accept only s3:// there), else OUTPUT_ROOT."""
    if settings.output_url:
        from movie_gen.storage.s3_store import S3Store

        return S3Store(settings.output_url)
    return LocalStore(settings.output_root)


def locator(store: OutputStore, downloads: str) -> Callable[[str], tuple[str, str | None]]:
    """A file's locations for a client, by its key: its URL under `downloads` (the job's files
    URL), and its object URL when the files are in object storage (else None)."""
    return lambda key: (downloads + key.rsplit("/", 1)[-1], store.url(key))
