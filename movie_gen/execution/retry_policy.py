"""How an error shows in attempt records; Celery's task options hold the retry policy itself."""

from __future__ import annotations

from movie_gen.errors import MovieGenError


def error_class(exc: BaseException) -> str:
    """A short name for the error's class as shown in attempt records."""
    return exc.kind if isinstance(exc, MovieGenError) else "unexpected"
