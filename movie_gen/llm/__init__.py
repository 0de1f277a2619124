"""Model access: the writer interface and the factory that picks the configured provider."""

from __future__ import annotations

from movie_gen.config.settings import Settings

from .writer import LLMReply, ScriptWriter


def get_writer(settings: Settings) -> ScriptWriter:
    """The writer named by `LLM_PROVIDER`: the OpenAI client, or the built-in offline writer."""
    if settings.llm_provider == "openai":
        from .openai_writer import OpenAIWriter

        return OpenAIWriter(settings)
    from .offline_writer import OfflineWriter

    return OfflineWriter(settings)


__all__ = ["LLMReply", "ScriptWriter", "get_writer"]
