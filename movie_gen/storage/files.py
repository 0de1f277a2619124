"""File names and local files: safe path resolution and atomic JSON writes under OUTPUT_ROOT, and
one file stem per job (claimed in any output store)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Iterator

_UNSAFE = re.compile(r"[^A-Za-z0-9]+")
_DIR_PART = re.compile(r"^[A-Za-z0-9._ -]+$")


class UnsafePath(ValueError):
    """A client-supplied path that would leave OUTPUT_ROOT or is not a plain relative path."""


def check_relative_dir(raw: str) -> str:
    """Normalise a client's relative directory name, or raise UnsafePath saying why."""
    if not raw or not raw.strip():
        raise UnsafePath("must not be empty")
    if "\\" in raw or "\x00" in raw:
        raise UnsafePath("must use '/' separators and plain characters")
    path = PurePosixPath(raw)
    if path.is_absolute():
        raise UnsafePath("must be a relative path under OUTPUT_ROOT, not an absolute path")
    parts = [p for p in path.parts if p not in ("", ".")]
    if not parts:
        raise UnsafePath("must name a directory under OUTPUT_ROOT")
    if any(p == ".." for p in parts):
        raise UnsafePath("must not contain '..'")
    if any(p.startswith(".") for p in parts):
        raise UnsafePath("must not contain hidden directories (names starting with '.')")
    if not all(_DIR_PART.match(p) for p in parts):
        raise UnsafePath("may contain only letters, digits, '.', '_', '-' and spaces")
    if len(parts) > 8 or len(raw) > 200:
        raise UnsafePath("is too long (at most 8 levels and 200 characters)")
    return "/".join(parts)


def resolve_under(root: Path, relative: str) -> Path:
    """The real directory for `relative` under `root`; raise UnsafePath if a symlink escapes."""
    root_real = Path(os.path.realpath(root))
    target = Path(os.path.realpath(root_real / check_relative_dir(relative)))
    if target != root_real and root_real not in target.parents:
        raise UnsafePath("resolves outside OUTPUT_ROOT (through a symbolic link)")
    return target


def file_stem(title: str) -> str:
    """`Your Story Title!` → `Your_Story_Title`: safe as a file name on every system."""
    stem = _UNSAFE.sub("_", title).strip("_")[:80].strip("_")
    return stem or "Untitled"


def _process_umask() -> int:
    """The umask, read without changing it (Linux), else by setting and restoring it once."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_process_umask()  # what open() would give: 0644 under the usual umask 022


@contextmanager
def _paths_hidden() -> Iterator[None]:
    """OSErrors without their file names: messages reach clients, the server's paths must not."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            raise
        raise type(exc)(exc.errno, exc.strerror) from None


def _temp_json(directory: Path, data: Any) -> str:
    with _paths_hidden():
        directory.mkdir(parents=True, exist_ok=True)
    with _paths_hidden():
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; the renamed file follows the umask instead
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, ensure_ascii=False, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temp file in the same directory, then rename it over `path`."""
    tmp = _temp_json(path.parent, data)
    try:
        with _paths_hidden():
            os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def create_json_exclusive(path: Path, data: Any) -> bool:
    """Write JSON to `path` only if no file is there (atomic); False when it already exists."""
    tmp = _temp_json(path.parent, data)
    try:
        with _paths_hidden():
            os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)


def reserve_stem(store: Any, directory: str, title: str, metadata: dict[str, Any], job_id: str) -> str:
    """Claim a file stem in `directory` (a key of the output store `store`) by creating its
    metadata file; never reuse another job's."""
    base = file_stem(title)
    for n in range(1, 1000):
        stem = base if n == 1 else f"{base}_{n}"
        key = join(directory, metadata_file_name(stem))
        if store.create_json(key, {**metadata, "file_stem": stem}):
            return stem
        existing = store.read_json(key)
        if isinstance(existing, dict) and existing.get("job_id") == job_id:
            return stem  # this job claimed it before (a redelivered task)
    raise OSError(f"no free file name for {base!r} in {directory}")


def join(directory: str, name: str) -> str:
    """The key of the file `name` in `directory` (a key of an output store, '.' for its root)."""
    return name if directory in ("", ".") else f"{directory}/{name}"


def set_file_name(stem: str, set_number: int) -> str:
    """The file of one set: `<Story_Title>_set_01.json`."""
    return f"{stem}_set_{set_number:02d}.json"


def metadata_file_name(stem: str) -> str:
    """The job's metadata file: `<Story_Title>_metadata.json`."""
    return f"{stem}_metadata.json"


CHUNK = 64 * 1024  # bytes of a file sent at a time


def check_key(key: str) -> str:
    """A key as the stores accept it: relative, '/'-separated, without '..' or empty parts."""
    parts = PurePosixPath(key).parts
    if (not parts or key.startswith("/") or "\\" in key or "\x00" in key
            or any(p in ("", ".", "..") for p in parts)):
        raise UnsafePath("is not a plain relative file name")
    return "/".join(parts)


def to_bytes(data: Any) -> bytes:
    """A JSON document as every store writes it: indented UTF-8 with a final newline."""
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
