"""The OpenAI provider: Chat Completions in the output mode the server accepts, errors mapped to domain classes."""

from __future__ import annotations

import logging
from typing import Any, Callable

import openai

from movie_gen.config.settings import Settings
from movie_gen.story.segments import set_json_schema
from movie_gen.story.story_bible import SetPlan

from ..errors import ContextOverflow, InvalidModelOutput, MovieGenError, PermanentLLMError
from . import prompts, request_params
from .client_errors import classify, overflow_error
from .context_overflow import Overflow, Shrink, next_shrink, overflow_of
from .outline import write_outline
from .output_modes import parse_json_reply, response_format, schema_instructions, without_keywords
from .refusals import error_text, refused_feature
from .server_context import CONTEXTS, ServerContext, discover
from .server_profile import PROFILES, ServerProfile, adapted
from .writer import CallContext, LLMReply

log = logging.getLogger(__name__)
OPENAI_BASE_URL = "https://api.openai.com/v1"
BOUND_KEYWORDS = ("minLength", "maxLength", "uniqueItems")
Prompt = Callable[[bool], str]  # compact -> the prompt text


class OpenAIWriter:
    """Writes bibles and sets through any OpenAI-compatible Chat Completions server."""

    name = "openai"

    def __init__(self, settings: Settings) -> None:
        if not settings.openai_api_key:
            raise PermanentLLMError("OPENAI_API_KEY is not set (or use LLM_PROVIDER=offline)")
        self.settings = settings
        self.model = settings.openai_model
        self.server = (settings.openai_base_url or OPENAI_BASE_URL, settings.openai_model)
        self.client = openai.OpenAI(api_key=settings.openai_api_key,
                                    base_url=settings.openai_base_url,
                                    timeout=settings.openai_timeout_s, max_retries=0)

    def _context(self) -> ServerContext:
        """The context per request: OPENAI_CONTEXT_TOKENS, else what the server reported (asked once),
        or a smaller one an overflow message named."""
        learned = CONTEXTS.known(self.server)
        setting = self.settings.openai_context_tokens
        if setting and not (learned and learned.tokens and learned.tokens < setting):
            return ServerContext(setting, "OPENAI_CONTEXT_TOKENS")
        if learned is not None:
            return learned
        return CONTEXTS.get(self.server, lambda: discover(self.server[0], self.settings.openai_api_key,
                                                          self.model))

    def _request(self, profile: ServerProfile, prompt: str, name: str, schema: dict[str, Any],
                 shrink: Shrink) -> tuple[dict[str, Any], int]:
        """The request body, and the reply limit it carries."""
        if not profile.schema_bounds:
            schema = without_keywords(schema, BOUND_KEYWORDS)
        text = prompt + schema_instructions(profile.mode, schema, shrink.compact)
        fmt = response_format(profile.mode, name, schema)
        context = self._context()
        limit = request_params.reply_limit(
            self.settings, request_params.prompt_tokens_estimate(prompts.SYSTEM, text, fmt),
            context.tokens, context.source)
        limit = min(limit, shrink.cap or limit)
        request = {"model": self.model,
                   "messages": request_params.messages(prompts.SYSTEM, text, profile.system_role),
                   **request_params.token_limit(profile.token_param, limit),
                   **request_params.sampling(self.settings)}
        if fmt is not None:
            request["response_format"] = fmt
        return request, limit

    def _create(self, prompt: Prompt, name: str, schema: dict[str, Any],
                pace: Callable[[], None]) -> tuple[Any, ServerProfile]:
        """One request; a refused request shape is sent once more in the next shape, a request that
        overflowed the context once more with a lower reply limit or a shorter prompt (same attempt)."""
        profile = PROFILES.get(self.server, self.settings)
        refused: list[str] = []
        shrink = Shrink()
        while True:
            try:
                request, limit = self._request(profile, prompt(shrink.compact), name, schema, shrink)
            except ContextOverflow:  # our estimate leaves no room for a reply: try the compact prompt
                if shrink.compact:
                    raise
                shrink = Shrink(cap=shrink.cap, compact=True, steps=shrink.steps + 1)
                continue
            pace()
            try:
                response = self.client.chat.completions.create(**request)
            except openai.APIStatusError as exc:
                overflow = overflow_of(exc)
                if overflow is not None:
                    shrink = self._shrunk(overflow, shrink, limit, exc)
                    continue
                feature = refused_feature(exc, profile)
                if feature is None:
                    raise classify(exc, self.settings.quota_retry_after_s) from exc
                fallback = None if feature in refused else adapted(profile, feature, self.settings, error_text(exc))
                if fallback is None:
                    raise PermanentLLMError(
                        f"model server refused the request shape ({feature}: output mode {profile.mode}, "
                        f"token parameter {profile.token_param}): HTTP {exc.status_code}: {exc.message}; "
                        "see docs/models.md for the settings this server needs") from exc
                refused.append(feature)
                profile = fallback
                continue
            except Exception as exc:  # every other client failure becomes a domain error
                raise classify(exc, self.settings.quota_retry_after_s) from exc
            if refused:
                PROFILES.remember(self.server, profile, refused)
            return response, profile

    def _shrunk(self, overflow: Overflow, shrink: Shrink, limit: int, exc: openai.APIStatusError) -> Shrink:
        """The smaller request to send after an overflow: a reply limit that fits, else a compact
        prompt; ContextOverflow (naming the limit) when neither is left."""
        if overflow.context:
            CONTEXTS.learn(self.server, overflow.context, "the server's context overflow message")
        log.warning("model server %s (model %s) answered that the request exceeds its context: %s",
                    self.server[0], self.model, overflow.message)
        smaller = next_shrink(overflow, shrink, limit)
        if smaller is not None:
            return smaller
        raise overflow_error(overflow, f"HTTP {exc.status_code}: {overflow.message}", limit) from exc

    def _ask(self, prompt: Prompt | str, name: str, schema: dict[str, Any],
             pace: Callable[[], None]) -> LLMReply:
        """One model call (plus at most one fallback per refused feature) and its parsed reply."""
        if isinstance(prompt, str):
            prompt = _fixed(prompt)
        response, profile = self._create(prompt, name, schema, pace)
        usage = {"model_calls": 1}
        if response.usage is not None:
            usage.update(prompt_tokens=response.usage.prompt_tokens or 0,
                         completion_tokens=response.usage.completion_tokens or 0)
        try:
            data = self._content(response)
        except MovieGenError as exc:
            exc.usage = usage  # the call was paid for even though its reply is unusable
            raise
        return LLMReply(data=data, usage=usage, model=response.model or self.model, mode=profile.mode,
                        context=self._context().describe())

    def _reply_budget(self, prompt: str, schema: dict[str, Any]) -> int:
        """The reply tokens a request with this prompt and schema may use."""
        estimate = request_params.prompt_tokens_estimate(prompts.SYSTEM, prompt, schema, schema)
        context = self._context()
        return request_params.reply_limit(self.settings, estimate, context.tokens, context.source)

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
        return parse_json_reply(choice.message.content)

    def write_bible(self, idea: str, sets_total: int, segments_total: int,
                    ctx: CallContext) -> LLMReply:
        """The whole story bible: one call, or the bible then batches of synopses for long outlines."""
        pace = _paced(ctx)
        return write_outline(lambda *request: self._ask(*request, pace), self._reply_budget, idea,
                             sets_total, segments_total, ctx.feedback)

    def write_set(self, idea: str, bible: dict[str, Any], plan: SetPlan,
                  ctx: CallContext) -> LLMReply:
        """One call: exactly the segments of `plan` (a compact prompt if the full one overflowed)."""
        ids = [c["id"] for c in bible["characters"]]

        def prompt(compact: bool) -> str:
            return prompts.with_feedback(prompts.set_prompt(idea, bible, plan, compact), ctx.feedback)
        places = [loc["name"] for loc in bible.get("locations", [])]
        return self._ask(prompt, f"story_set_{plan.set_number}", set_json_schema(plan, ids, places),
                         _paced(ctx))


def _fixed(text: str) -> Prompt:
    return lambda compact: text


def _paced(ctx: CallContext) -> Callable[[], None]:
    """Before each request of one attempt: nothing for the first (its slot was waited for),
    the global rate limit for the others (outline batches, a refused shape sent again)."""
    sent = []

    def before_request() -> None:
        if sent and ctx.pace is not None:
            ctx.pace()
        sent.append(True)
    return before_request
