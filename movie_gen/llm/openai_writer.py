"""The OpenAI provider: Chat Completions with a strict JSON schema, errors mapped to domain classes."""

from __future__ import annotations

import json
import logging
from typing import Any

import openai

from ..errors import InvalidModelOutput, MovieGenError, PermanentLLMError, TransientLLMError
from ..segments import set_json_schema
from ..settings import Settings
from ..story_bible import SetPlan, bible_json_schema
from . import prompts
from .writer import CallContext, LLMReply

log = logging.getLogger(__name__)

RETRYABLE_STATUS = {408, 409, 429}


def retry_after_seconds(headers: Any) -> float | None:
    """The wait a 429/503 asks for, from `retry-after-ms` or `retry-after` (seconds)."""
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw:
            try:
                return max(0.0, float(raw) * scale)
            except ValueError:
                continue
    return None


def classify(exc: BaseException) -> MovieGenError:
    """Map an exception from the openai client to the domain error that decides retrying."""
    if isinstance(exc, MovieGenError):
        return exc
    if isinstance(exc, openai.APITimeoutError):
        return TransientLLMError(f"model call timed out: {exc}")
    if isinstance(exc, openai.APIConnectionError):
        return TransientLLMError(f"cannot reach the model server: {exc}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = f"model server answered HTTP {status}: {exc.message}"
        if status in RETRYABLE_STATUS or status >= 500:
            return TransientLLMError(detail, retry_after_s=retry_after_seconds(exc.response.headers))
        return PermanentLLMError(detail)
    if isinstance(exc, json.JSONDecodeError):
        return TransientLLMError(f"model server sent a malformed body: {exc}")
    if isinstance(exc, openai.APIError):
        return TransientLLMError(f"model call failed: {exc}")
    return PermanentLLMError(f"unexpected error calling the model: {exc!r}")


class OpenAIWriter:
    """Writes bibles and sets through any OpenAI-compatible Chat Completions server."""

    name = "openai"

    def __init__(self, settings: Settings) -> None:
        if not settings.openai_api_key:
            raise PermanentLLMError("OPENAI_API_KEY is not set (or use LLM_PROVIDER=offline)")
        self.model = settings.openai_model
        self.max_tokens = settings.openai_max_tokens
        self.client = openai.OpenAI(api_key=settings.openai_api_key,
                                    base_url=settings.openai_base_url,
                                    timeout=settings.openai_timeout_s, max_retries=0)

    def _call(self, prompt: str, schema_name: str, schema: dict[str, Any]) -> LLMReply:
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "system", "content": prompts.SYSTEM},
                          {"role": "user", "content": prompt}],
                response_format={"type": "json_schema", "json_schema": {
                    "name": schema_name, "strict": True, "schema": schema}},
                max_completion_tokens=self.max_tokens,
            )
        except Exception as exc:  # every client failure becomes a domain error
            raise classify(exc) from exc
        usage = {}
        if response.usage is not None:
            usage = {"prompt_tokens": response.usage.prompt_tokens or 0,
                     "completion_tokens": response.usage.completion_tokens or 0}
        try:
            data = self._content(response)
        except MovieGenError as exc:
            exc.usage = usage  # the call was paid for even though its reply is unusable
            raise
        return LLMReply(data=data, usage=usage, model=response.model or self.model)

    @staticmethod
    def _content(response: Any) -> Any:
        """The reply's JSON, or the domain error that says why it is unusable."""
        if not response.choices:
            raise InvalidModelOutput("model answered with no choices")
        choice = response.choices[0]
        if getattr(choice.message, "refusal", None):
            raise PermanentLLMError(f"model refused: {choice.message.refusal}")
        if choice.finish_reason == "content_filter":
            raise PermanentLLMError("model output was blocked by its content filter")
        if choice.finish_reason == "length":
            raise InvalidModelOutput("model reply was cut off by the token limit (finish_reason=length)")
        try:
            return json.loads(choice.message.content or "")
        except json.JSONDecodeError as exc:
            raise InvalidModelOutput(f"model reply is not valid JSON: {exc}") from None

    def write_bible(self, idea: str, sets_total: int, segments_total: int,
                    ctx: CallContext) -> LLMReply:
        """One call: the whole story bible."""
        return self._call(prompts.bible_prompt(idea, sets_total, segments_total),
                          "story_bible", bible_json_schema(sets_total))

    def write_set(self, idea: str, bible: dict[str, Any], plan: SetPlan,
                  ctx: CallContext) -> LLMReply:
        """One call: exactly the segments of `plan`."""
        ids = [c["id"] for c in bible["characters"]]
        return self._call(prompts.set_prompt(idea, bible, plan),
                          f"story_set_{plan.set_number}", set_json_schema(plan, ids))
